"""RFM scores move from activity into the narrow customer_value table (buyers only; fillfactor
80 on PostgreSQL so a rescore's updates stay HOT)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 03:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SCORES = ("rfm_r", "rfm_f", "rfm_m", "rfm_score")


def upgrade() -> None:
    op.create_table(
        "customer_value",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=26), nullable=False),
        sa.Column("rfm_r", sa.SmallInteger(), nullable=False),
        sa.Column("rfm_f", sa.SmallInteger(), nullable=False),
        sa.Column("rfm_m", sa.SmallInteger(), nullable=False),
        sa.Column("rfm_score", sa.SmallInteger(), nullable=False),
        sa.Column("top_customer", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "customer_id", name=op.f("pk_customer_value")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE customer_value SET (fillfactor = 80)")
    op.execute(
        "INSERT INTO customer_value (tenant_id, customer_id, rfm_r, rfm_f, rfm_m, rfm_score,"
        " top_customer) SELECT tenant_id, customer_id, rfm_r, rfm_f, rfm_m, rfm_score,"
        " top_customer FROM activity WHERE rfm_score <> 0"
    )
    with op.batch_alter_table("activity", schema=None) as batch_op:
        for name in (*_SCORES, "top_customer"):
            batch_op.drop_column(name)


def downgrade() -> None:
    with op.batch_alter_table("activity", schema=None) as batch_op:
        for name in _SCORES:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("top_customer", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute(
        "UPDATE activity SET"
        " rfm_r = (SELECT v.rfm_r FROM customer_value v WHERE v.tenant_id = activity.tenant_id"
        "  AND v.customer_id = activity.customer_id),"
        " rfm_f = (SELECT v.rfm_f FROM customer_value v WHERE v.tenant_id = activity.tenant_id"
        "  AND v.customer_id = activity.customer_id),"
        " rfm_m = (SELECT v.rfm_m FROM customer_value v WHERE v.tenant_id = activity.tenant_id"
        "  AND v.customer_id = activity.customer_id),"
        " rfm_score = (SELECT v.rfm_score FROM customer_value v"
        "  WHERE v.tenant_id = activity.tenant_id AND v.customer_id = activity.customer_id),"
        " top_customer = (SELECT v.top_customer FROM customer_value v"
        "  WHERE v.tenant_id = activity.tenant_id AND v.customer_id = activity.customer_id)"
        " WHERE EXISTS (SELECT 1 FROM customer_value v WHERE v.tenant_id = activity.tenant_id"
        "  AND v.customer_id = activity.customer_id)"
    )
    op.drop_table("customer_value")
