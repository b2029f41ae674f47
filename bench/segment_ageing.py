"""How the lifecycle reviews age the indexes of `activity`, and what that costs a segment.

Run with `.venv/bin/python bench/segment_ageing.py --reuse NAME` on a database
`bench/segments.py --generate-only` kept. It times a copy (CREATE DATABASE … TEMPLATE, migrated
to head, dropped afterwards): first every index of `activity` is rebuilt (REINDEX: the
generation's full-table updates bloat them, which is not what reviews do), then `--days` daily
sweeps run one after another (each as the periodic worker runs it, one day later than the last,
its own transaction; autovacuum as configured), then with `--rules-change` a lifecycle rules
change and its background review in batches. Before and after, and once more after a REINDEX:
each index's size, the 5-condition segment (median of 5) and `count(*)` of activity (median of
5), the segment's count with EXPLAIN (ANALYZE, BUFFERS), and a segment on the churn risk. The
updates' HOT share is pg_stat_user_tables' n_tup_hot_upd / n_tup_upd over the reviews.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import segments as bench
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

import closedloop_retention
from closedloop_retention.activity.rules import RulesRepository
from closedloop_retention.activity.service import ActivityService
from closedloop_retention.models import kit
from closedloop_retention.segments import compiler, language
from closedloop_retention.segments.repository import SegmentRepository
from loopkit import db, migrations
from loopkit.events import Outbox

# A segment on a column the reviews write (no goal of its own): what it costs when the segment
# index does or does not carry the column.
RISK_SEGMENT = "churn_risk >= 0.5 AND stage IN (development, stable)"
REPEATS = 5


async def _median(work: Callable[[], Awaitable[Any]]) -> float:
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        await work()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


async def _sizes(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c"
                " WHERE c.oid = 'activity'::regclass OR c.oid IN"
                " (SELECT indexrelid FROM pg_index WHERE indrelid = 'activity'::regclass)"
                " ORDER BY c.relname"
            )
        )
        return {name: size for name, size in rows}


async def _updates(engine: AsyncEngine) -> tuple[int, int]:
    """(n_tup_upd, n_tup_hot_upd) of activity, as the statistics have them."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        row = (
            await conn.execute(
                text(
                    "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
                    " WHERE relname = 'activity'"
                )
            )
        ).one()
        return int(row[0]), int(row[1])


async def _measure(engine: AsyncEngine, label: str, now: Any) -> dict[str, float]:
    sessions = db.session_factory(engine)
    repo = SegmentRepository()

    async def preview(expression: str) -> None:
        async with sessions() as session:
            await repo.preview(session, bench.TENANT, language.parse(expression), now, 20)

    async def count() -> None:
        async with engine.connect() as conn:
            await conn.scalar(text("SELECT count(*) FROM activity"))

    await preview(bench.SEGMENT)  # warm
    await count()
    out = {
        "count(*)": await _median(count),
        "segment": await _median(lambda: preview(bench.SEGMENT)),
        "risk segment": await _median(lambda: preview(RISK_SEGMENT)),
    }
    node = language.parse(bench.SEGMENT)
    async with sessions() as session:
        query = compiler.count_query(bench.TENANT, node, now)
        compiled = query.compile(
            dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
        )
        plan = (
            await session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {compiled}"))
        ).scalar_one()
    top = plan[0]["Plan"]
    out["segment pages"] = top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)
    sizes = await _sizes(engine)
    print(f"{label}:")
    for name, size in sizes.items():
        print(f"  {name:<34}{size / 2**20:>9.1f} MB")
    print(
        f"  count(*) {out['count(*)']:.4f} s, segment {out['segment']:.4f} s"
        f" (x{out['segment'] / out['count(*)']:.1f}; its count read {out['segment pages']:,.0f}"
        f" pages), risk segment {out['risk segment']:.4f} s"
        f" (x{out['risk segment'] / out['count(*)']:.1f})"
    )
    return out


async def _review(engine: AsyncEngine, start: datetime, days: int, rules_change: bool) -> None:
    """`days` daily sweeps from the day after `start`, then (`rules_change`) a rules change and
    its review in batches, each printed with its CPU."""
    activity = ActivityService(Outbox(kit, "retention"), RulesRepository())
    sessions = db.session_factory(engine)
    due = changed = 0
    wall, cpu = 0.0, [0.0, 0.0]
    for day in range(1, days + 1):
        t0, c0, s0 = time.perf_counter(), time.process_time(), bench._server_cpu()
        async with sessions() as s, s.begin():
            examined, moved = await activity.sweep(s, bench.TENANT, start + timedelta(days=day))
        wall += time.perf_counter() - t0
        cpu[0] += time.process_time() - c0
        cpu[1] += bench._server_cpu() - s0
        due, changed = due + examined, changed + moved
    print(
        f"{days} daily sweeps: {due:,} due, {changed:,} stage changes, {wall:.2f} s,"
        f" CPU client / server {cpu[0]:.2f} / {cpu[1]:.2f} s"
        f" ({(cpu[0] + cpu[1]) / max(due, 1) * 1e3:.3f} ms per due customer)"
    )
    if rules_change:
        results: dict[str, float] = {}
        now = start + timedelta(days=days)
        await bench.rules_change(sessions, activity, now, results, in_request=False)
        client, server = bench.STEP_CPU["rules review (all batches)"]
        print(
            f"rules change review {results['rules review (all batches)']:.2f} s,"
            f" CPU client / server {client:.2f} / {server:.2f} s"
        )


async def _hot_share(url: str, before: tuple[int, int]) -> None:
    """activity's updates and HOT updates since `before`, once the exited backends' statistics
    have arrived (shortly after they exit)."""
    engine = db.create_engine(url, pool_size=1)
    after = before
    for _ in range(50):
        await asyncio.sleep(0.1)
        after = await _updates(engine)
        if after[0] > before[0]:
            break
    await engine.dispose()
    updates, hot = after[0] - before[0], after[1] - before[1]
    print(f"activity updates: {updates:,}, HOT {hot:,} ({hot / max(updates, 1):.1%})")


async def run(args: argparse.Namespace) -> None:
    reuse, days, keep, lived = args.reuse, args.days, args.keep, args.lived
    name = f"closedloop_bench_ageing_{uuid.uuid4().hex[:8]}"
    bench.BENCH_DATABASE[:] = [name]
    url = make_url(bench.base_url()).set(database=name).render_as_string(hide_password=False)
    await bench.admin(f'CREATE DATABASE "{name}" TEMPLATE "{reuse}"')
    try:
        mig = Path(closedloop_retention.__file__).parent / "migrations"
        await asyncio.to_thread(migrations.upgrade, mig, url, service="retention")
        engine = db.create_engine(url, pool_size=2)
        async with engine.connect() as conn:
            start = await conn.scalar(text("SELECT now FROM bench_generated"))
            for statement in args.sql:  # --sql: a schema variant to try, before the REINDEX
                await conn.execute(text(statement))
            await conn.commit()
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("REINDEX TABLE activity"))
            await conn.execute(text("VACUUM (ANALYZE) activity"))
        fresh = await _measure(engine, "fresh (after REINDEX)", start + timedelta(days=1))
        upd0 = await _updates(engine)
        await _review(engine, start, days, args.rules_change)
        now = start + timedelta(days=days)
        await engine.dispose()  # the backends exit, their statistics flushed
        await _hot_share(url, upd0)
        engine = db.create_engine(url, pool_size=2)
        aged = await _measure(engine, "aged (after the reviews)", now)
        # What autovacuum leaves later: the dead entries gone, every page all-visible again (an
        # index-only scan reads the heap for the entries of a page that is not), the index pages
        # the reviews split still there.
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM (ANALYZE) activity"))
        vacuumed = await _measure(engine, "aged, then vacuumed", now)
        if lived:
            # The aged state kept for `segments.py --reuse`: its timed steps run a day after the
            # last review here.
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE bench_generated SET now = :now"), {"now": now})
            await engine.dispose()
            await bench.admin(f'CREATE DATABASE "{lived}" TEMPLATE "{name}"')
            print(f"kept the aged state as {lived}")
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("REINDEX TABLE activity"))
        rebuilt = await _measure(engine, "REINDEXed", now)
        await engine.dispose()
        for key in ("segment", "risk segment"):
            print(
                f"ratio {key.replace(' ', '_')}_x fresh {fresh[key] / fresh['count(*)']:.2f}"
                f" aged {aged[key] / aged['count(*)']:.2f}"
                f" vacuumed {vacuumed[key] / vacuumed['count(*)']:.2f}"
                f" reindexed {rebuilt[key] / rebuilt['count(*)']:.2f}"
            )
    finally:
        if not keep:
            await bench.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", metavar="DATABASE", required=True)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rules-change", action="store_true")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--lived",
        metavar="DATABASE",
        default="",
        help="keep the aged, vacuumed state as this database (for segments.py --reuse)",
    )
    parser.add_argument(
        "--sql", action="append", default=[], help="a statement run on the copy first (repeatable)"
    )
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
