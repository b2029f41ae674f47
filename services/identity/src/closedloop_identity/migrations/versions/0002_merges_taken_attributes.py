"""merges.taken_attributes: what the survivor gained from the merged customer, for unmerge

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 22:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("merges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("taken_attributes", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("merges", schema=None) as batch_op:
        batch_op.drop_column("taken_attributes")
