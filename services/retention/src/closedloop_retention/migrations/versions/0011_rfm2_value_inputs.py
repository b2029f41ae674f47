"""customer_value keeps the RFM inputs too (last order time, orders, revenue: copies of the
activity row's), so a rescore reads only the narrow table; backfilled from activity (every buyer
gets a row, scores 0 until the next rescore where it had none)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 04:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INPUTS = ("last_order_at", "order_count", "revenue_minor")


def upgrade() -> None:
    with op.batch_alter_table("customer_value", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_order_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("order_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("revenue_minor", sa.BigInteger(), nullable=False, server_default="0")
        )
    # The scored customers' inputs, then a row for every buyer not scored yet.
    op.execute(
        "UPDATE customer_value SET last_order_at = a.last_order_at,"
        " order_count = a.order_count, revenue_minor = a.revenue_minor"
        " FROM activity a WHERE a.tenant_id = customer_value.tenant_id"
        " AND a.customer_id = customer_value.customer_id"
    )
    op.execute(
        "INSERT INTO customer_value (tenant_id, customer_id, last_order_at, order_count,"
        " revenue_minor, rfm_r, rfm_f, rfm_m, rfm_score, top_customer)"
        " SELECT a.tenant_id, a.customer_id, a.last_order_at, a.order_count, a.revenue_minor,"
        " 0, 0, 0, 0, false FROM activity a"
        " WHERE a.order_count > 0 AND a.last_order_at IS NOT NULL AND NOT EXISTS"
        " (SELECT 1 FROM customer_value v WHERE v.tenant_id = a.tenant_id"
        " AND v.customer_id = a.customer_id)"
    )


def downgrade() -> None:
    # Rows without scores were only inputs (the old table held scored buyers only).
    op.execute("DELETE FROM customer_value WHERE rfm_score = 0")
    with op.batch_alter_table("customer_value", schema=None) as batch_op:
        for name in _INPUTS:
            batch_op.drop_column(name)
