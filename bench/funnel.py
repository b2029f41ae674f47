"""GetFunnel over the funnel read model on PostgreSQL, next to a `count(*)` of the same rows.

Creates a throwaway database (CLOSEDLOOP_BENCH_DATABASE_URL / CLOSEDLOOP_TEST_DATABASE_URL or
postgres@127.0.0.1), migrates the retention schema and generates, in SQL, `--customers` customers'
funnel rows over 180 days (every customer exposed; 40% leads, 30% assigned, 10% first paid, 4%
repeat buyers, 5% referred newcomers, 2% referred who paid, 2% referrers; their paid orders) plus
as many rows again in another tenant. Then times, best of `--repeat`, for a 90-day range:

* `count(*)` of the tenant's funnel_steps rows in the range (the ceiling: one index range scan);
* GetFunnel's use case (`FunnelService.funnel`: step counts, paid orders and median times, per
  week and for the whole range), as the RPC runs it minus the gRPC hop;

and prints `ratio funnel_x <GetFunnel / count(*)> goal 3`. The issue's size is 1M customers
(`--customers 1000000`); the default runs in about a minute on a busy 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import create_database, database_base_url, drop_database, new_database_name
from sqlalchemy import make_url, text

import closedloop_retention
from closedloop_retention.funnel.repository import FunnelRepository
from closedloop_retention.funnel.service import FunnelService
from closedloop_retention.funnel.views import FunnelQuery, Granularity
from loopkit import db, migrations

TENANT = "bench"

# Customer i reaches step s when a hash-like fraction of i falls under the step's share. Each
# step follows the one before by its own gap, per customer: the step's typical gap times a
# log-uniform factor between 0.1 and 10 (a histogram of one constant gap per step would flatter
# the rollup's approximate medians). `r` and the factors are repeatable pseudo-random fractions.
GENERATE = """
WITH c AS (
    SELECT i, lpad(i::text, 26, '0') AS cid,
        CAST(:start AS timestamptz) + make_interval(secs => (i * 7919 % 15552000)) AS t0,
        'camp-' || (i % 7) AS campaign, 'ch-' || (i % 50) AS channel,
        (i * 2654435761 % 1000) / 1000.0 AS r,
        round(7200 * exp(((i * 48271 % 100003) / 100003.0 - 0.5) * 4.605)) AS g1,
        round(64800 * exp(((i * 69621 % 100019) / 100019.0 - 0.5) * 4.605)) AS g2,
        round(273600 * exp(((i * 16807 % 100043) / 100043.0 - 0.5) * 4.605)) AS g3,
        round(2894400 * exp(((i * 40692 % 100057) / 100057.0 - 0.5) * 4.605)) AS g4
    FROM generate_series(1, CAST(:n AS bigint)) AS i
)
INSERT INTO funnel_steps (tenant_id, customer_id, step, at, campaign_id, channel_id, gap_s)
SELECT :tenant, c.cid, s.step, c.t0 + make_interval(secs => CAST(s.after_s AS float8)),
    c.campaign, c.channel, CAST(s.gap_s AS float8)
FROM c CROSS JOIN LATERAL (VALUES
    ('exposed', 1.0, 0, NULL), ('lead', 0.4, c.g1, c.g1), ('assigned', 0.3, c.g1 + c.g2, c.g2),
    ('first_paid', 0.1, c.g1 + c.g2 + c.g3, c.g3),
    ('repeat', 0.04, c.g1 + c.g2 + c.g3 + c.g4, c.g4), ('referred', 0.05, c.g1, NULL),
    ('referred_paid', 0.02, c.g1 + c.g2 + c.g3 + 3600, NULL), ('referrer', 0.02, c.g4, NULL)
) AS s(step, share, after_s, gap_s)
WHERE c.r < s.share
"""
ORDERS = """
INSERT INTO funnel_orders (tenant_id, order_id, customer_id, paid_at, campaign_id, channel_id)
SELECT tenant_id, customer_id || '-' || step, customer_id, at, campaign_id, channel_id
FROM funnel_steps WHERE tenant_id = :tenant AND step IN ('first_paid', 'repeat')
"""
OTHER_TENANT = """
INSERT INTO funnel_steps (tenant_id, customer_id, step, at, campaign_id, channel_id, gap_s)
SELECT 'other', customer_id, step, at, campaign_id, channel_id, gap_s FROM funnel_steps
WHERE tenant_id = :tenant
"""
COUNT = """
SELECT count(*) FROM funnel_steps WHERE tenant_id = :tenant AND at >= :start AND at < :end
"""


async def best(repeat: int, work: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    await work()  # warm the cache and the plans
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = await work()
        times.append(time.perf_counter() - t0)
    return min(times), out


def _rollup_migration() -> Any:
    """The migration that adds the rollup (found by name: the lead may renumber it), whose
    backfill this bench runs on the rows it generated."""
    versions = Path(closedloop_retention.__file__).parent / "migrations" / "versions"
    (path,) = versions.glob("*_daily_rollup.py")
    spec = importlib.util.spec_from_file_location("funnel_rollup_migration", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _generate(engine: Any, customers: int, start: datetime) -> None:
    """The step and order rows in SQL, then the rollup by the migration's own backfill."""
    t0 = time.perf_counter()
    async with engine.begin() as conn:
        params = {"tenant": TENANT, "start": start, "n": customers}
        await conn.execute(text(GENERATE), params)
        await conn.execute(text(ORDERS), {"tenant": TENANT})
        await conn.execute(text(OTHER_TENANT), {"tenant": TENANT})
    print(f"generated the step and order rows in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    async with engine.begin() as conn:
        await conn.run_sync(_rollup_migration().backfill)
    print(f"filled the rollup (the migration's backfill) in {time.perf_counter() - t0:.1f} s")


async def _vacuum(engine: Any, sessions: Any) -> None:
    async with engine.connect() as plain:
        conn = await plain.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("funnel_steps", "funnel_orders", "funnel_daily", "funnel_gap_buckets"):
            await conn.execute(text(f"VACUUM ANALYZE {table}"))  # index-only scans
    rows = await _scalar(sessions, "SELECT count(*) FROM funnel_steps", {})
    daily = await _scalar(sessions, "SELECT count(*) FROM funnel_daily", {})
    gaps = await _scalar(sessions, "SELECT count(*) FROM funnel_gap_buckets", {})
    print(f"{rows:,} funnel_steps rows; rollup: {daily:,} funnel_daily, {gaps:,} gap buckets")


async def run(customers: int, repeat: int, *, keep: bool = False, reuse: str = "") -> None:
    base = database_base_url()
    name = reuse or new_database_name("closedloop_bench_funnel")
    url = (
        make_url(base).set(database=name).render_as_string(hide_password=False)
        if reuse
        else await create_database(base, name)
    )
    keep = keep or bool(reuse)
    try:
        mig = Path(closedloop_retention.__file__).parent / "migrations"
        t0 = time.perf_counter()
        await asyncio.to_thread(migrations.upgrade, mig, url, service="retention")
        if reuse:
            print(f"migrated to head in {time.perf_counter() - t0:.1f} s")
        engine = db.create_engine(url, pool_size=2)
        sessions = db.session_factory(engine)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        if not reuse:
            await _generate(engine, customers, start)
        await _vacuum(engine, sessions)
        q = FunnelQuery(
            TENANT, start + timedelta(days=45), start + timedelta(days=135), Granularity.WEEK
        )
        # The same 90 days starting and ending mid-day: two partial edge days from funnel_steps.
        shifted = FunnelQuery(
            TENANT, q.start + timedelta(hours=13), q.end + timedelta(hours=13), Granularity.WEEK
        )
        funnel = FunnelService(FunnelRepository())

        def counter(query: FunnelQuery) -> Callable[[], Awaitable[int]]:
            window = {"tenant": TENANT, "start": query.start, "end": query.end}
            return lambda: _scalar(sessions, COUNT, window)

        def getter(query: FunnelQuery) -> Callable[[], Awaitable[Any]]:
            async def get_funnel() -> Any:
                async with sessions() as s, s.begin():
                    return await funnel.funnel(s, query)

            return get_funnel

        scan_s, in_range = await best(repeat, counter(q))
        funnel_s, found = await best(repeat, getter(q))
        shifted_scan_s, _ = await best(repeat, counter(shifted))
        shifted_s, _ = await best(repeat, getter(shifted))

        total = found.total
        print(
            f"  90-day range: {in_range:,} rows; {len(found.periods)} weekly periods; "
            f"exposed {total.customers.get('exposed', 0):,}, leads "
            f"{total.customers.get('lead', 0):,}, paid orders {total.paid_orders:,}"
        )
        exact = await _exact_medians(sessions, q)
        errors = [
            f"{step} {total.median_s.get(step, 0) / m - 1:+.2%}" for step, m in exact.items() if m
        ]
        print(f"  medians against percentile_cont over the range: {', '.join(errors)}")
        print(f"{'count(*) of the range':<44}{scan_s:>10.3f} s")
        print(f"{'GetFunnel (weekly)':<44}{funnel_s:>10.3f} s")
        print(f"{'count(*), range off day boundaries':<44}{shifted_scan_s:>10.3f} s")
        print(f"{'GetFunnel (weekly), range off day boundaries':<44}{shifted_s:>10.3f} s")
        print(f"ratio funnel_x {funnel_s / scan_s:.2f} goal 3")
        print(f"ratio funnel_edges_x {shifted_s / shifted_scan_s:.2f} goal 3")
        await engine.dispose()
    finally:
        if keep:
            print(f"kept database {name}")
        else:
            await drop_database(base, name)


async def _exact_medians(sessions: Any, q: FunnelQuery) -> dict[str, float]:
    """Each step's exact median gap over the range (what GetFunnel's histograms approximate)."""
    sql = (
        "SELECT step, percentile_cont(0.5) WITHIN GROUP (ORDER BY gap_s) FROM funnel_steps "
        "WHERE tenant_id = :tenant AND at >= :start AND at < :end AND gap_s IS NOT NULL "
        "GROUP BY step"
    )
    async with sessions() as s:
        rows = await s.execute(text(sql), {"tenant": TENANT, "start": q.start, "end": q.end})
        return {step: float(m) for step, m in rows}


async def _scalar(sessions: Any, sql: str, params: dict[str, Any]) -> int:
    async with sessions() as s:
        return int((await s.execute(text(sql), params)).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--customers",
        type=int,
        default=200_000,
        help="customers generated (the issue's size: 1000000)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best counts")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--quick", action="store_true", help="20,000 customers, one run")
    parser.add_argument("--smoke", action="store_true", help="1,000 customers, one run")
    parser.add_argument(
        "--reuse",
        default="",
        metavar="DATABASE",
        help="time a database an earlier --keep run left (migrated to head, not regenerated)",
    )
    args = parser.parse_args()
    if args.quick:
        args.customers, args.repeat = 20_000, 1
    if args.smoke:
        args.customers, args.repeat = 1_000, 1
    asyncio.run(run(args.customers, args.repeat, keep=args.keep, reuse=args.reuse))


if __name__ == "__main__":
    main()
