"""interactions name their customer, so a forget finds the openid rows too

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 17:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("interactions") as batch:
        batch.add_column(
            sa.Column("customer_id", sa.String(length=64), nullable=False, server_default="")
        )
        batch.create_index("ix_interactions_customer", ["tenant_id", "customer_id"])


def downgrade() -> None:
    with op.batch_alter_table("interactions") as batch:
        batch.drop_index("ix_interactions_customer")
        batch.drop_column("customer_id")
