"""referral reward clawback (reward_revocations, coupons.revoked_at) and fission rewards with
their notices (fission_rewards, customer_notices)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 22:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "reward_revocations",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("reward_id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("points_taken", sa.BigInteger(), nullable=False),
        sa.Column("points_written_off", sa.BigInteger(), nullable=False),
        sa.Column("coupon_id", sa.String(length=26), nullable=False),
        sa.Column("coupon_outcome", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "reward_id", name=op.f("pk_reward_revocations")),
    )
    op.create_table(
        "fission_rewards",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("participant_id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("coupon_id", sa.String(length=26), nullable=False),
        sa.Column("reward_text", sa.String(length=500), nullable=False),
        sa.Column("invited", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("reached_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "campaign_id", "participant_id", name=op.f("pk_fission_rewards")
        ),
    )
    op.create_table(
        "customer_notices",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("content", sa.String(length=1000), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_notices")),
        sa.UniqueConstraint(
            "tenant_id",
            "idempotency_key",
            name=op.f("uq_customer_notices_tenant_id_idempotency_key"),
        ),
    )
    with op.batch_alter_table("customer_notices", schema=None) as batch_op:
        batch_op.create_index("ix_customer_notices_status", ["status", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("customer_notices", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_notices_status")
    op.drop_table("customer_notices")
    op.drop_table("fission_rewards")
    op.drop_table("reward_revocations")
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")
