"""Incremental RFM rescore: each cut-off keeps where it sat among the buyers (`rfm_cut_offs.
ranks`), the rows changed since a rescore are indexed by their `held_generation`, and a deleted
buyer's ranked inputs are kept until the next rescore (`rfm_departed`), so a rescore re-counts
only what changed (activity/value.py). Existing tenants' `ranks` stay NULL: their next rescore
ranks every buyer, as before.

Revision ID: 0019_rfm5
Revises: 0018
Create Date: 2026-12-01 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_rfm5"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rfm_cut_offs") as batch:
        batch.add_column(sa.Column("ranks", sa.JSON(), nullable=True))
    # A plain CREATE INDEX (about as long as one of 0017's at 1M rows: order writes wait).
    op.create_index("ix_customer_value_held", "customer_value", ["tenant_id", "held_generation"])
    op.create_table(
        "rfm_departed",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("last_order_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("order_count", sa.Integer(), nullable=False),
        sa.Column("revenue_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rfm_departed")),
    )
    op.create_index("ix_rfm_departed_tenant", "rfm_departed", ["tenant_id", "generation"])


def downgrade() -> None:
    op.drop_index("ix_rfm_departed_tenant", table_name="rfm_departed")
    op.drop_table("rfm_departed")
    op.drop_index("ix_customer_value_held", table_name="customer_value")
    with op.batch_alter_table("rfm_cut_offs") as batch:
        batch.drop_column("ranks")
