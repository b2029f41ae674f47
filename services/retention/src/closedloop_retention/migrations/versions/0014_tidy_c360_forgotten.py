"""the customer 360 remembers whom it erased (c360_forgotten), so late events of a forgotten
customer do not recreate their rows

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 06:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "c360_forgotten",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(26), nullable=False),
        sa.Column("forgotten_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "customer_id"),
    )


def downgrade() -> None:
    op.drop_table("c360_forgotten")
