"""live replicas, so the per-second pace is split between them

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_replicas",
        sa.Column("replica_id", sa.String(length=128), nullable=False),
        sa.Column("seen_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("replica_id", name=op.f("pk_gateway_replicas")),
    )


def downgrade() -> None:
    op.drop_table("gateway_replicas")
