"""the customer 360 read model: c360_leads, c360_followups, c360_orders, c360_referrals,
c360_rewards, c360_timeline

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 03:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def _text(name: str, length: int) -> sa.Column[str]:
    return sa.Column(name, sa.String(length=length), nullable=False)


def upgrade() -> None:
    op.create_table(
        "c360_leads",
        _text("tenant_id", 64),
        _text("lead_id", 64),
        _text("customer_id", 26),
        _text("campaign_id", 64),
        _text("channel_id", 64),
        _text("channel_kind", 32),
        _text("referrer_customer_id", 26),
        _text("referral_code", 64),
        sa.Column("captured_at", _TIME, nullable=True),
        _text("rep_id", 64),
        sa.Column("assigned_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "lead_id", name=op.f("pk_c360_leads")),
    )
    op.create_index("ix_c360_leads_customer", "c360_leads", ["tenant_id", "customer_id"])
    op.create_table(
        "c360_followups",
        _text("tenant_id", 64),
        _text("follow_up_id", 64),
        _text("customer_id", 26),
        _text("lead_id", 64),
        _text("rep_id", 64),
        _text("kind", 32),
        sa.Column("inbound", sa.Boolean(), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "follow_up_id", name=op.f("pk_c360_followups")),
    )
    op.create_index(
        "ix_c360_followups_customer", "c360_followups", ["tenant_id", "customer_id", "at"]
    )
    op.create_table(
        "c360_orders",
        _text("tenant_id", 64),
        _text("order_id", 64),
        _text("customer_id", 26),
        _text("rep_id", 64),
        _text("lead_id", 64),
        _text("currency", 3),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("fully_refunded", sa.Boolean(), nullable=False),
        sa.Column("paid_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "order_id", name=op.f("pk_c360_orders")),
    )
    op.create_index(
        "ix_c360_orders_customer", "c360_orders", ["tenant_id", "customer_id", "paid_at"]
    )
    op.create_table(
        "c360_referrals",
        _text("tenant_id", 64),
        _text("newcomer_id", 26),
        _text("referrer_id", 26),
        _text("code", 64),
        sa.Column("referred_at", _TIME, nullable=False),
        _text("referral_id", 64),
        sa.Column("converted_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "newcomer_id", name=op.f("pk_c360_referrals")),
    )
    op.create_index("ix_c360_referrals_referrer", "c360_referrals", ["tenant_id", "referrer_id"])
    op.create_table(
        "c360_rewards",
        _text("tenant_id", 64),
        _text("reward_id", 64),
        _text("customer_id", 26),
        _text("referral_id", 64),
        _text("kind", 16),
        sa.Column("points", sa.BigInteger(), nullable=False),
        _text("coupon_template_id", 64),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("granted_at", _TIME, nullable=True),
        sa.Column("revoked_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "reward_id", name=op.f("pk_c360_rewards")),
    )
    op.create_index("ix_c360_rewards_customer", "c360_rewards", ["tenant_id", "customer_id"])
    op.create_table(
        "c360_timeline",
        _text("tenant_id", 64),
        _text("entry_key", 200),
        _text("customer_id", 26),
        _text("kind", 48),
        _text("service", 32),
        sa.Column("at", _TIME, nullable=False),
        _text("summary", 300),
        _text("ref", 64),
        sa.PrimaryKeyConstraint("tenant_id", "entry_key", name=op.f("pk_c360_timeline")),
    )
    op.create_index(
        "ix_c360_timeline_customer", "c360_timeline", ["tenant_id", "customer_id", "at"]
    )


def downgrade() -> None:
    for table in ("timeline", "rewards", "referrals", "orders", "followups", "leads"):
        op.drop_table(f"c360_{table}")
