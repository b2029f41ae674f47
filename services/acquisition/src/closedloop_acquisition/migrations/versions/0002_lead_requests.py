"""lead_requests: CaptureLead idempotency keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 16:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lead_requests",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("page_id", sa.String(length=26), nullable=False),
        sa.Column("lead_id", sa.String(length=26), nullable=False),
        sa.Column("repeat", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "request_id", name=op.f("pk_lead_requests")),
    )
    with op.batch_alter_table("lead_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lead_requests_created_at"), ["created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("lead_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lead_requests_created_at"))
    op.drop_table("lead_requests")
