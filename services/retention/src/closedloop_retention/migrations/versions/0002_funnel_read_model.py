"""funnel read model: steps, paid orders, attribution and merge aliases

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 16:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _attribution() -> list[sa.Column[str]]:
    return [
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "funnel_steps",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=26), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        *_attribution(),
        sa.Column("gap_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "customer_id", "step", name=op.f("pk_funnel_steps")),
    )
    op.create_index(
        "ix_funnel_steps_tenant_at",
        "funnel_steps",
        ["tenant_id", "at", "step", "gap_s"],
        unique=False,
    )
    op.create_index(
        "ix_funnel_steps_tenant_channel_at",
        "funnel_steps",
        ["tenant_id", "channel_id", "at"],
        unique=False,
    )
    op.create_index(
        "ix_funnel_steps_tenant_campaign_at",
        "funnel_steps",
        ["tenant_id", "campaign_id", "at"],
        unique=False,
    )
    op.create_table(
        "funnel_orders",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=26), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        *_attribution(),
        sa.PrimaryKeyConstraint("tenant_id", "order_id", name=op.f("pk_funnel_orders")),
    )
    op.create_index(
        "ix_funnel_orders_customer",
        "funnel_orders",
        ["tenant_id", "customer_id", "paid_at"],
        unique=False,
    )
    op.create_index(
        "ix_funnel_orders_tenant_paid", "funnel_orders", ["tenant_id", "paid_at"], unique=False
    )
    op.create_table(
        "funnel_sources",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=26), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        *_attribution(),
        sa.PrimaryKeyConstraint("tenant_id", "customer_id", name=op.f("pk_funnel_sources")),
    )
    op.create_table(
        "funnel_aliases",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=26), nullable=False),
        sa.Column("survivor_id", sa.String(length=26), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "customer_id", name=op.f("pk_funnel_aliases")),
    )


def downgrade() -> None:
    op.drop_table("funnel_aliases")
    op.drop_table("funnel_sources")
    op.drop_index("ix_funnel_orders_tenant_paid", table_name="funnel_orders")
    op.drop_index("ix_funnel_orders_customer", table_name="funnel_orders")
    op.drop_table("funnel_orders")
    op.drop_index("ix_funnel_steps_tenant_campaign_at", table_name="funnel_steps")
    op.drop_index("ix_funnel_steps_tenant_channel_at", table_name="funnel_steps")
    op.drop_index("ix_funnel_steps_tenant_at", table_name="funnel_steps")
    op.drop_table("funnel_steps")
