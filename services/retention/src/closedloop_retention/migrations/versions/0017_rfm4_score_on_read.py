"""RFM scored on read: the tenant's cut-offs in `rfm_cut_offs`, the inputs indexed, the stored
scores dropped (a rescore writes one row per tenant, no customer's). A buyer's inputs that
change after a rescore are held at what it ranked (`held_*`). Each tenant that had scores is
ranked here from its current inputs (what its next rescore would give; rows not scored yet stay
unscored until then); downgrade writes the scores back from the cut-offs.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 11:00:00.000000
"""

import math
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BUYER = "order_count > 0 AND last_order_at IS NOT NULL"
_INDEXES = {
    "ix_customer_value_recency": "last_order_at",
    "ix_customer_value_frequency": "order_count",
    "ix_customer_value_monetary": "revenue_minor",
}
_CUTS = {
    "last_order_at": "recency",
    "order_count": "frequency",
    "revenue_minor": "monetary",
}
_SCORES = ("rfm_r", "rfm_f", "rfm_m", "rfm_score", "top_customer")


def _position(share: float, n: int) -> int:
    return max(1, math.ceil(share * n))


def _rank(bind: sa.engine.Connection, tenant: str) -> None:
    """The tenant's cut-offs from its current inputs (activity/value.py's rule)."""
    where = f"tenant_id = :t AND {_BUYER}"
    n = bind.execute(sa.text(f"SELECT count(*) FROM customer_value WHERE {where}"), {"t": tenant})
    count = int(n.scalar() or 0)
    values: dict[str, object] = {"t": tenant, "n": count}
    for column, prefix in _CUTS.items():
        for q in (20, 40, 60, 80):
            values[f"{prefix}_{q}"] = bind.execute(
                sa.text(
                    f"SELECT {column} FROM customer_value WHERE {where}"
                    f" ORDER BY {column} LIMIT 1 OFFSET :k"
                ),
                {"t": tenant, "k": _position(q / 100, count) - 1},
            ).scalar()
    values["top_revenue"] = bind.execute(
        sa.text(
            f"SELECT revenue_minor FROM customer_value WHERE {where}"
            " ORDER BY revenue_minor DESC LIMIT 1 OFFSET :k"
        ),
        {"t": tenant, "k": _position(0.2, count) - 1},
    ).scalar()
    names = [k for k in values if k not in ("t", "n")]
    bind.execute(
        sa.text(
            "INSERT INTO rfm_cut_offs (tenant_id, generation, buyers, "
            + ", ".join(names)
            + ") VALUES (:t, 1, :n, "
            + ", ".join(f":{k}" for k in names)
            + ")"
        ),
        values,
    )


def upgrade() -> None:
    op.create_table(
        "rfm_cut_offs",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("buyers", sa.Integer(), nullable=False),
        *[
            sa.Column(f"recency_{q}", sa.DateTime(timezone=True), nullable=True)
            for q in (20, 40, 60, 80)
        ],
        *[sa.Column(f"frequency_{q}", sa.Integer(), nullable=True) for q in (20, 40, 60, 80)],
        *[sa.Column(f"monetary_{q}", sa.BigInteger(), nullable=True) for q in (20, 40, 60, 80)],
        sa.Column("top_revenue", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_rfm_cut_offs")),
    )
    with op.batch_alter_table("customer_value", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_generation", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("held_last_order_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("held_order_count", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("held_revenue_minor", sa.BigInteger(), nullable=True))
    bind = op.get_bind()
    # Tenants ranked before: ranked again now; their buyers not scored yet stay unscored.
    tenants = bind.execute(
        sa.text("SELECT DISTINCT tenant_id FROM customer_value WHERE rfm_score <> 0")
    ).scalars()
    for tenant in list(tenants):
        _rank(bind, tenant)
    op.execute(
        "UPDATE customer_value SET held_generation = 1 WHERE rfm_score = 0"
        " AND tenant_id IN (SELECT tenant_id FROM rfm_cut_offs)"
    )
    with op.batch_alter_table("customer_value", schema=None) as batch_op:
        for name in _SCORES:
            batch_op.drop_column(name)
    # After the batch above (SQLite recreates the table there).
    for name, column in _INDEXES.items():
        op.create_index(
            name,
            "customer_value",
            ["tenant_id", column],
            unique=False,
            postgresql_where=sa.text(_BUYER),
            sqlite_where=sa.text(_BUYER),
        )
    if bind.dialect.name == "postgresql":
        # No rescore updates these rows any more (an order's update changes indexed columns,
        # never HOT): the room fillfactor 50 kept for HOT updates is not needed by new pages.
        # Not rewritten: a rewrite (CLUSTER) halved the pages but left none all-visible until
        # the next vacuum, and at 1M the rescore's index walks and the sweep were slower for it.
        op.execute("ALTER TABLE customer_value RESET (fillfactor)")


def _quintile(value: str, prefix: str) -> str:
    whens = " ".join(
        f"WHEN {value} > c.{prefix}_{q} THEN {i + 2}"
        for i, q in reversed(list(enumerate((20, 40, 60, 80))))
    )
    return f"(CASE {whens} ELSE 1 END)"


def downgrade() -> None:
    for name in _INDEXES:
        op.drop_index(name, table_name="customer_value")
    with op.batch_alter_table("customer_value", schema=None) as batch_op:
        for name in _SCORES[:4]:
            batch_op.add_column(
                sa.Column(name, sa.SmallInteger(), nullable=False, server_default="0")
            )
        batch_op.add_column(
            sa.Column("top_customer", sa.Boolean(), nullable=False, server_default=sa.false())
        )

    # The scores as read: held inputs where held, else the current ones.
    def kept(column: str) -> str:
        return (
            "(CASE WHEN customer_value.held_generation = c.generation"
            f" THEN customer_value.held_{column} ELSE customer_value.{column} END)"
        )

    last = kept("last_order_at")
    orders, revenue = f"COALESCE({kept('order_count')}, 0)", f"COALESCE({kept('revenue_minor')}, 0)"
    scored = f"{orders} > 0 AND {last} IS NOT NULL AND c.recency_20 IS NOT NULL"
    r, f, m = (
        _quintile(last, "recency"),
        _quintile(orders, "frequency"),
        _quintile(revenue, "monetary"),
    )

    def from_cuts(expr: str, default: str) -> str:
        return (
            f"COALESCE((SELECT CASE WHEN {scored} THEN {expr} ELSE {default} END"
            " FROM rfm_cut_offs c WHERE c.tenant_id = customer_value.tenant_id), " + default + ")"
        )

    op.execute(
        "UPDATE customer_value SET"
        f" rfm_r = {from_cuts(r, '0')}, rfm_f = {from_cuts(f, '0')}, rfm_m = {from_cuts(m, '0')},"
        f" top_customer = {from_cuts(f'{revenue} >= c.top_revenue', 'false')}"
    )
    op.execute("UPDATE customer_value SET rfm_score = rfm_r * 100 + rfm_f * 10 + rfm_m")
    with op.batch_alter_table("customer_value", schema=None) as batch_op:
        for name in (
            "held_generation",
            "held_last_order_at",
            "held_order_count",
            "held_revenue_minor",
        ):
            batch_op.drop_column(name)
    op.drop_table("rfm_cut_offs")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE customer_value SET (fillfactor = 50)")
