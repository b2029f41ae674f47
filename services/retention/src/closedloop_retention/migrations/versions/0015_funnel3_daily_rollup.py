"""funnel_daily, funnel_gap_buckets, funnel_gap_bounds: GetFunnel's per-day rollup, backfilled
from funnel_steps

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 06:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEN_YEARS_MS = 10 * 365 * 86400 * 1000


def gap_bounds_ms() -> list[int]:
    """The gap buckets' lower bounds, as funnel/rollup.py computes them (frozen here)."""
    bounds = [0, 1000]
    while bounds[-1] < _TEN_YEARS_MS:
        bounds.append(bounds[-1] + max(1, bounds[-1] // 50))
    return bounds


# The UTC day of a step row, as the service computes it in Python (utc(at).date()).
DAY = {"postgresql": "CAST(at AT TIME ZONE 'UTC' AS date)", "sqlite": "date(at)"}
# (dim, its dim_id, what it groups by besides the day and step)
DIMS = (
    ("'all'", "''", "tenant_id"),
    ("'campaign'", "campaign_id", "tenant_id, campaign_id"),
    ("'channel'", "channel_id", "tenant_id, channel_id"),
)

DAILY = (
    "INSERT INTO funnel_daily (tenant_id, dim, dim_id, day, step, customers) "
    + " UNION ALL ".join(
        f"SELECT tenant_id, {dim}, {dim_id}, {{day}}, step, count(*) FROM funnel_steps "
        f"GROUP BY {by}, {{day}}, step"
        for dim, dim_id, by in DIMS
    )
)
GAPS = (
    "INSERT INTO funnel_gap_buckets (tenant_id, dim, dim_id, day, step, bucket, n, sum_s) "
    "WITH g AS (SELECT tenant_id, campaign_id, channel_id, {day} AS day, step, gap_s, "
    "(SELECT b.bucket FROM funnel_gap_bounds b WHERE b.lo_ms <= s.gap_s * 1000.0 "
    "ORDER BY b.lo_ms DESC LIMIT 1) AS bucket FROM funnel_steps s WHERE s.gap_s IS NOT NULL) "
    + " UNION ALL ".join(
        f"SELECT tenant_id, {dim}, {dim_id}, day, step, bucket, count(*), sum(gap_s) FROM g "
        f"GROUP BY {by}, day, step, bucket"
        for dim, dim_id, by in DIMS
    )
)


def backfill(bind: Connection) -> None:
    """Count funnel_steps into the (empty) rollup; bench/funnel.py runs it too."""
    day = DAY[bind.dialect.name]
    bind.execute(sa.text(DAILY.replace("{day}", day)))
    bind.execute(sa.text(GAPS.replace("{day}", day)))
    if bind.dialect.name == "postgresql":
        bind.execute(sa.text("ANALYZE funnel_daily"))
        bind.execute(sa.text("ANALYZE funnel_gap_buckets"))


def upgrade() -> None:
    def keys() -> list[sa.Column[object]]:
        return [
            sa.Column("tenant_id", sa.String(64), primary_key=True),
            sa.Column("dim", sa.String(8), primary_key=True),
            sa.Column("dim_id", sa.String(64), primary_key=True),
            sa.Column("day", sa.Date(), primary_key=True),
            sa.Column("step", sa.String(16), primary_key=True),
        ]

    op.create_table(
        "funnel_daily",
        *keys(),
        sa.Column("customers", sa.Integer(), nullable=False),
    )
    op.create_table(
        "funnel_gap_buckets",
        *keys(),
        sa.Column("bucket", sa.SmallInteger(), primary_key=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("sum_s", sa.Float(), nullable=False),
    )
    bounds = op.create_table(
        "funnel_gap_bounds",
        # whole milliseconds as a double, compared with gap_s * 1000.0 through the index
        sa.Column("lo_ms", sa.Float(), primary_key=True, autoincrement=False),
        sa.Column("bucket", sa.SmallInteger(), nullable=False),
    )
    rows = [{"lo_ms": float(lo), "bucket": k} for k, lo in enumerate(gap_bounds_ms())]
    op.bulk_insert(bounds, rows)
    backfill(op.get_bind())


def downgrade() -> None:
    op.drop_table("funnel_gap_bounds")
    op.drop_table("funnel_gap_buckets")
    op.drop_table("funnel_daily")
