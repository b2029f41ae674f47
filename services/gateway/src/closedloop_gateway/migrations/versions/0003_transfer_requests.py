"""transfer requests by idempotency key, so a retried transfer never asks WeCom twice

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "transfer_requests",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "idempotency_key", name=op.f("pk_transfer_requests")),
    )
    op.create_index("ix_transfer_requests_created", "transfer_requests", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_transfer_requests_created", table_name="transfer_requests")
    op.drop_table("transfer_requests")
