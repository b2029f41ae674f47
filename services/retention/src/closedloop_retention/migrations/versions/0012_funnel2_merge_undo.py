"""funnel_merges: what each merge changed in the funnel read model, for its unmerge

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 04:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "funnel_merges",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("merge_id", sa.String(64), primary_key=True),
        sa.Column("merged_id", sa.String(26), nullable=False),
        sa.Column("survivor_id", sa.String(26), nullable=False),
        sa.Column("undo", sa.JSON(), nullable=False),
    )
    op.create_index(
        "ix_funnel_merges_customers", "funnel_merges", ["tenant_id", "merged_id", "survivor_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_funnel_merges_customers", table_name="funnel_merges")
    op.drop_table("funnel_merges")
