"""customer_moves (what each customer.merged moved, for customer.unmerged) and customer_aliases
(merged ids -> survivor, so an event naming a merged-away id lands on the survivor)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 03:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from loopkit.migrations import create_customer_moves, drop_customer_moves

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_customer_moves()
    op.create_table(
        "customer_aliases",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=26), nullable=False),
        sa.Column("survivor_id", sa.String(length=26), nullable=False),
        sa.Column("merge_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "customer_id", name=op.f("pk_customer_aliases")),
    )


def downgrade() -> None:
    op.drop_table("customer_aliases")
    drop_customer_moves()
