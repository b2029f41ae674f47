"""win-back offers, opt-outs, delivery outcomes of broadcast messages

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 22:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _delivery() -> list[sa.Column[object]]:
    return [
        sa.Column("delivery", sa.String(length=16), nullable=False, server_default=""),
        sa.Column("delivery_errcode", sa.Integer(), nullable=False, server_default="0"),
    ]


def upgrade() -> None:
    with op.batch_alter_table("broadcast_recipients") as batch:
        for column in _delivery():
            batch.add_column(column)
    op.create_table(
        "win_back_offers",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=26), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("coupon_id", sa.String(length=26), nullable=False),
        sa.Column("value_minor", sa.BigInteger(), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner_rep_id", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        *_delivery(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_win_back_offers")),
        sa.UniqueConstraint(
            "tenant_id",
            "idempotency_key",
            name=op.f("uq_win_back_offers_tenant_id_idempotency_key"),
        ),
    )
    op.create_index("ix_win_back_offers_due", "win_back_offers", ["status", "created_at"])
    op.create_index(
        "ix_win_back_offers_customer",
        "win_back_offers",
        ["tenant_id", "customer_id", "created_at"],
    )
    op.create_table(
        "opt_outs",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=26), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "customer_id", "channel", name=op.f("pk_opt_outs")),
    )


def downgrade() -> None:
    op.drop_table("opt_outs")
    op.drop_index("ix_win_back_offers_customer", table_name="win_back_offers")
    op.drop_index("ix_win_back_offers_due", table_name="win_back_offers")
    op.drop_table("win_back_offers")
    with op.batch_alter_table("broadcast_recipients") as batch:
        batch.drop_column("delivery_errcode")
        batch.drop_column("delivery")
