"""Segment evaluation and the lifecycle sweep over synthetic customers on PostgreSQL, next to a
plain `SELECT count(*)` scan of the same tables in the same run.

Intended home: bench/segments.py (run with `.venv/bin/python bench/segments.py`). It creates a
throwaway PostgreSQL database (CLOSEDLOOP_BENCH_DATABASE_URL / CLOSEDLOOP_TEST_DATABASE_URL or
postgres@127.0.0.1), migrates the retention schema, generates `--customers` customers and
`--orders` orders in SQL (generate_series), folds the orders into the activity model, then times:

* count(*) of activity and of orders (the scan baseline);
* PreviewSegment's statements for a 5-condition segment (the count, then a 20-customer sample),
  and for an empty one (the count alone; segment6), no goal for it: its multiple of count(*);
* the lifecycle sweep as the periodic worker runs it one day later (only customers whose review
  moment has come are loaded; each change writes its stage_changes row and outbox event);
* the bulk RFM recomputation (the tenant's quintile cut-offs, read from the indexes of the
  inputs in the narrow `customer_value` table; since rfm4 the scores are computed when read, so
  a rescore writes no customer's row): the first and second (every buyer counted), again with
  nothing changed (three times, the median kept; incremental since rfm5: no row read), after
  1 % of the buyers ordered (incremental: those rows read, printed) and a full one asked for on
  the same data;
* reading the scores: a segment on them (also before the first rescore, when it is empty) and
  the top-100 list.

The generated data is settled before anything is timed: every customer reviewed by the
service's own rules as of the day before (exact stages, reasons and review moments), the
indexes of `activity` rebuilt (the generation's full-table updates aged them 6x), then vacuumed.
`--full-sweep` also times a review of every customer (`sweep(every=True)`, what a
rules change ran in its request before), then a rules change as it is now: the request (rules and
review marker) and the background review in batches (`review_step`); `--python-sweep` times
both sweeps with the rules in Python instead (SQLite's path, PostgreSQL's before the set-based
review), for a before/after on the same data.

Prints times and ratios to the count(*) scans, and drops the database again. The count(*)
ceilings and the read-only steps (the segments, the top list) are each the median of three runs.
Beside `ratio segment_x` (against count(*) of activity), `ratio segment_x_tables_read` compares
the segment with the sum of count(*) of every table its statement reads (EXPLAIN of the
statement it sent); the segment on scores and the top list print the same multiple.
`--generate-only` keeps a generated database untouched; `--reuse NAME` times a copy of it
(CREATE DATABASE … TEMPLATE), so runs at 1M need not regenerate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from _common import cpu_seconds
from _statements import SIDES, install
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

import closedloop_retention
from closedloop_retention.activity import value
from closedloop_retention.activity.repository import ActivityRepository
from closedloop_retention.activity.rules import Rules, RulesRepository
from closedloop_retention.activity.service import ActivityService
from closedloop_retention.models import kit
from closedloop_retention.segments import language
from closedloop_retention.segments.repository import SegmentRepository
from loopkit import db, migrations
from loopkit.events import Outbox

TENANT = "bench"
SEGMENT = (
    "stage IN (stable, decline) AND order_count >= 3 AND revenue > 500 "
    "AND last_order_at < now-30d AND NOT unsubscribed = true"
)
RFM_SEGMENT = "rfm_score >= 444 OR (top_customer = true AND rfm_r <= 2)"
# A segment nobody is in: its preview (count + 20-customer sample) timed against count(*).
EMPTY_SEGMENT = "order_count >= 100000"


def base_url() -> str:
    return (
        os.environ.get("CLOSEDLOOP_BENCH_DATABASE_URL")
        or os.environ.get("CLOSEDLOOP_TEST_DATABASE_URL")
        or "postgresql+asyncpg://postgres@127.0.0.1:5432/"
    )


async def admin(sql: str) -> None:
    engine = create_async_engine(
        make_url(base_url()).set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


GENERATE = [
    # Customers: first seen within 400 days; 10% unsubscribed, 5% deleted the rep.
    """
    INSERT INTO activity (tenant_id, customer_id, first_seen_at, last_seen_at, order_count,
        revenue_minor, referrals_made, unsubscribed, deleted_rep, consent, channel_id,
        channel_kind, owner_rep_id, contact_kind, contact_scope, contact_value, active_hours,
        stage, stage_reason, churn_risk,
        win_back_attempts)
    SELECT :t, lpad(i::text, 26, '0'),
        CAST(:now AS timestamptz) - make_interval(days => (random() * 400)::int),
        CAST(:now AS timestamptz) - make_interval(days => (random() * 30)::int),
        0, 0, 0, random() < 0.1, random() < 0.05, random() < 0.9,
        'ch-' || (i % 50), 'qr_permanent', 'rep-' || (i % 200),
        'wechat_openid', 'wx-app', 'o-' || i, '[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]',
        'investigation', '', 0, 0
    FROM generate_series(1, :n) AS i
    """,
    # Orders: spread over customers with a skew (some buy often), within 400 days.
    """
    INSERT INTO orders (tenant_id, order_id, customer_id, amount_minor, refunded_minor, paid_at,
        fully_refunded, items)
    SELECT :t, 'o-' || i,
        lpad((1 + floor(power(random(), 2) * CAST(:n AS bigint)))::bigint::text, 26, '0'),
        (1000 + random() * 50000)::bigint, 0,
        CAST(:now AS timestamptz) - make_interval(secs => random() * 400 * 86400), false, '[]'
    FROM generate_series(1, :m) AS i
    """,
    """
    UPDATE activity a SET order_count = o.n, revenue_minor = o.revenue,
        first_order_at = o.first_at, last_order_at = o.last_at
    FROM (SELECT customer_id, count(*) AS n, sum(amount_minor) AS revenue,
                 min(paid_at) AS first_at, max(paid_at) AS last_at
          FROM orders WHERE tenant_id = :t GROUP BY customer_id) o
    WHERE a.tenant_id = :t AND a.customer_id = o.customer_id
    """,
    # The RFM inputs, as the order paths copy them into customer_value (not ranked yet).
    """
    INSERT INTO customer_value (tenant_id, customer_id, last_order_at, order_count,
        revenue_minor)
    SELECT tenant_id, customer_id, last_order_at, order_count, revenue_minor
    FROM activity WHERE tenant_id = :t AND order_count > 0
    """,
    # Stages as of a day ago, and review moments as the service computes them (approximately:
    # the stage is recomputed exactly by the sweep for those that are due).
    """
    UPDATE activity SET
        stage = CASE
            WHEN order_count = 0 THEN 'investigation'
            WHEN unsubscribed OR deleted_rep THEN 'decline'
            WHEN last_order_at < CAST(:now AS timestamptz) - interval '180 days' THEN 'churned'
            WHEN order_count >= 2
                 AND last_order_at > CAST(:now AS timestamptz) - interval '46 days' THEN 'stable'
            WHEN last_order_at > CAST(:now AS timestamptz) - interval '46 days' THEN 'development'
            ELSE 'decline' END,
        next_review_at = NULL
    WHERE tenant_id = :t
    """,
    # Review moments in the steady state: yesterday's sweep already handled every moment before
    # yesterday, so a customer's next moment is the first of (overdue, churn) after it.
    """
    UPDATE activity SET next_review_at = CASE
        WHEN order_count = 0 THEN
            CASE WHEN last_seen_at + interval '180 days' >= CAST(:now AS timestamptz)
                 THEN last_seen_at + interval '180 days' END
        WHEN last_order_at + make_interval(secs => GREATEST(
                EXTRACT(EPOCH FROM (last_order_at - first_order_at))
                    / GREATEST(order_count - 1, 1) * 1.5, 45 * 86400))
             >= CAST(:now AS timestamptz)
        THEN last_order_at + make_interval(secs => GREATEST(
                EXTRACT(EPOCH FROM (last_order_at - first_order_at))
                    / GREATEST(order_count - 1, 1) * 1.5, 45 * 86400))
        WHEN last_order_at + interval '180 days' >= CAST(:now AS timestamptz)
        THEN last_order_at + interval '180 days'
        END
    WHERE tenant_id = :t
    """,
    # When the data was generated for (the timed steps run one day later): --reuse reads it.
    "CREATE TABLE bench_generated AS SELECT CAST(:now AS timestamptz) AS now, :t AS t",
    "ANALYZE activity",
    "ANALYZE orders",
    "ANALYZE customer_value",
]


T = TypeVar("T")


async def settle(engine: AsyncEngine, at: datetime) -> None:
    """The steady state as of `at`: every customer reviewed by the service's own rules (exact
    stages, reasons and review moments, where GENERATE only approximates them), then vacuumed,
    as yesterday's sweeps and autovacuum would have left it."""
    t0 = time.perf_counter()
    activity = ActivityService(Outbox(kit, "retention"), RulesRepository())
    async with db.session_factory(engine)() as s, s.begin():
        examined, _ = await activity.sweep(s, TENANT, at, every=True)
        await s.execute(kit.outbox.delete())  # the events of a state that was never lived
        await s.execute(text("DELETE FROM stage_changes"))
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        # GENERATE's full-table UPDATEs and this review put four versions of every row into
        # every index of activity (the segment index 6x its built size): an age the service's
        # own writes do not give it (bench/segment_ageing.py: 1.7x after 30 days of reviews
        # and a rules change at 100k, 2x after 90). Built afresh, as after a bulk load.
        await conn.execute(text("REINDEX TABLE activity"))
        await conn.execute(text("VACUUM (ANALYZE) activity"))
    print(
        f"settled {examined:,} customers as of {at:%Y-%m-%d %H:%M} "
        f"in {time.perf_counter() - t0:.1f} s"
    )


# Every SQL statement the process sends (bench/_statements.py), for statements per step.
STATEMENTS: Counter[str] = Counter()


async def timed(label: str, work: Awaitable[T], results: dict[str, float]) -> T:
    before = _sent()
    LAST_SELECT.clear()
    start, cpu = time.perf_counter(), (time.process_time(), _server_cpu())
    out = await work
    results[label] = time.perf_counter() - start
    STEP_STATEMENTS[label] = _sent() - before
    STEP_CPU[label] = (time.process_time() - cpu[0], _server_cpu() - cpu[1])
    if LAST_SELECT:
        STEP_SELECT[label] = LAST_SELECT[0]
        LAST_SELECT.clear()
    return out


# CPU seconds of each step: this process's, and the PostgreSQL backends' serving the bench
# database (read from /proc when the server runs on this machine, else 0; parallel workers,
# which exit with their query, are not counted). On a loaded machine wall time follows the
# load; CPU time much less.
STEP_CPU: dict[str, tuple[float, float]] = {}
BENCH_DATABASE: list[str] = []  # the database of this run, once created


def _server_cpu() -> float:
    if not BENCH_DATABASE or not Path("/proc").is_dir():
        return 0.0
    # The backends' process titles name their database (no connection needed to find them).
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if f" {BENCH_DATABASE[0]} ".encode() in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return sum(cpu_seconds(pids).values())


STEP_STATEMENTS: dict[str, int] = {}

# Read-only steps and their count(*) ceilings are timed this many times, the median kept: one
# count(*) on the shared 2-core machine varied 0.09-0.26 s between runs minutes apart.
REPEATS = 3


async def median(label: str, work: Callable[[], Awaitable[T]], results: dict[str, float]) -> T:
    """`work()` timed REPEATS times (a read that changes nothing), the median kept."""
    times: list[float] = []
    for _ in range(REPEATS):
        out = await timed(label, work(), results)
        times.append(results[label])
    results[label] = sorted(times)[len(times) // 2]
    return out


# The last SELECT each timed step sent (statement, parameters): EXPLAIN names the tables it read.
LAST_SELECT: list[tuple[str, Any]] = []
STEP_SELECT: dict[str, tuple[str, Any]] = {}


def _capture_selects() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "before_cursor_execute")
    def _select(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            LAST_SELECT[:] = [(statement, parameters)]


def _sent() -> int:
    return sum(STATEMENTS[f"{side} statements"] for side in SIDES)


async def run(  # noqa: PLR0915
    customers: int,
    orders: int,
    keep: bool,
    *,
    full: bool,
    generate_only: bool = False,
    reuse: str = "",
    python_sweep: bool = False,
    review_in_request: bool = False,
) -> None:
    name = f"closedloop_bench_segments_{uuid.uuid4().hex[:8]}"
    BENCH_DATABASE[:] = [name]
    url = make_url(base_url()).set(database=name).render_as_string(hide_password=False)
    t0 = time.perf_counter()
    if reuse:
        # A copy of a database `--generate-only` left, untouched since: every run times the same
        # generated state (the copy is dropped afterwards; the original is kept).
        await admin(f'CREATE DATABASE "{name}" TEMPLATE "{reuse}"')
    else:
        await admin(f'CREATE DATABASE "{name}"')
    try:
        mig = Path(closedloop_retention.__file__).parent / "migrations"
        await asyncio.to_thread(migrations.upgrade, mig, url, service="retention")
        engine = db.create_engine(url, pool_size=2)
        sessions = db.session_factory(engine)
        if reuse:
            async with engine.connect() as conn:
                now = (await conn.scalar(text("SELECT now FROM bench_generated"))) + timedelta(
                    days=1
                )
            print(
                f"copied {reuse} (generated for {now:%Y-%m-%d %H:%M} UTC) in "
                f"{time.perf_counter() - t0:.1f} s"
            )
        else:
            now = datetime.now(UTC)
            params = {"t": TENANT, "n": customers, "m": orders, "now": now - timedelta(days=1)}
            async with engine.begin() as conn:
                for sql in GENERATE:
                    await conn.execute(text(sql), params if ":t" in sql else {})
            print(
                f"generated {customers:,} customers and {orders:,} orders in "
                f"{time.perf_counter() - t0:.1f} s"
            )
            await settle(engine, now - timedelta(days=1))
        if generate_only:
            await engine.dispose()
            keep = True
            print(f"kept {name}: time it with --reuse {name}")
            return

        results: dict[str, float] = {}
        async with engine.connect() as conn:
            for table in ("activity", "orders", "customer_value"):
                stmt = text(f"SELECT count(*) FROM {table}")
                await conn.execute(stmt)  # warm
                n = await median(f"count(*) {table}", partial(conn.scalar, stmt), results)
                # count(*) may read an index alone where the visibility map says every page is
                # all-visible (after a vacuum): far faster than reading the rows. Say which.
                visible = (
                    await conn.execute(
                        text("SELECT relallvisible, relpages FROM pg_class WHERE relname = :r"),
                        {"r": table},
                    )
                ).one()
                print(f"  {table}: {n:,} rows, {visible[0]:,} of {visible[1]:,} pages all-visible")
            # The same count reading the table's rows (a parallel sequential scan), as a step
            # that needs a row's columns must: the ceiling for those when the one above read an
            # index alone.
        async with engine.connect() as conn:  # SET LOCAL: gone with the transaction's rollback
            for setting in ("enable_indexonlyscan", "enable_indexscan", "enable_bitmapscan"):
                await conn.execute(text(f"SET LOCAL {setting} = off"))
            stmt = text("SELECT count(*) FROM activity")
            await conn.execute(stmt)  # warm
            await median("count(*) activity, rows", partial(conn.scalar, stmt), results)
        segments = SegmentRepository()

        async def preview(expression: str) -> tuple[int, list[str]]:
            node = language.parse(expression)
            async with sessions() as session:
                return await segments.preview(session, TENANT, node, now, 20)

        await preview(SEGMENT)  # warm
        count, sample = await median("segment (5 conditions)", partial(preview, SEGMENT), results)
        print(f"  segment: {count:,} customers, sample of {len(sample)}")
        # A preview with no member: the count, and no walk of the primary key for a sample
        # (segment6; before, its LIMIT 20 read every customer looking for one).
        count, sample = await median("empty segment", partial(preview, EMPTY_SEGMENT), results)
        print(f"  empty segment: {count:,} customers, sample of {len(sample)}")
        rules = RulesRepository()
        activity = ActivityService(Outbox(kit, "retention"), rules)

        async def sweep_once(every: bool) -> tuple[int, int]:
            async with sessions() as s, s.begin():
                if not python_sweep:
                    return await activity.sweep(s, TENANT, now, every=every)
                # Before: the rules in Python, every customer first made due for a full sweep.
                if every:
                    await ActivityRepository().review_all(s, TENANT, now)
                return await activity.sweep_in_python(s, TENANT, now, batch=500)

        async def sweep() -> tuple[int, int]:
            return await sweep_once(every=False)

        examined, changed = await timed("lifecycle sweep (1 day)", sweep(), results)
        print(f"  sweep: {examined:,} customers due, {changed:,} stage changes")
        _per_customer("lifecycle sweep (1 day)", examined)

        if full:

            async def full_sweep() -> tuple[int, int]:
                return await sweep_once(every=True)

            examined, changed = await timed("lifecycle sweep (all due)", full_sweep(), results)
            print(f"  full sweep: {examined:,} customers, {changed:,} stage changes")
            _per_customer("lifecycle sweep (all due)", examined)
            if not python_sweep:
                await rules_change(sessions, activity, now, results, in_request=review_in_request)

        async def rfm(full: bool = False) -> value.Rescore:
            async with sessions() as s, s.begin():
                return await value.rescore(s, TENANT, full=full)

        def said(done: value.Rescore) -> str:
            how = "full (every buyer counted)" if done.full else "incremental"
            return f"{done.buyers:,} buyers, {how}, {done.rows_read:,} changed rows read"

        # The score segment before any rescore: no cut-offs yet, nobody in it (the 23 s
        # preview at 1M customers segment5 found, a walk of the primary key for a sample).
        count, _ = await median(
            "RFM segment before a rescore", partial(preview, RFM_SEGMENT), results
        )
        print(f"  RFM segment before a rescore: {count:,} customers")
        done = await timed("RFM recompute (first)", rfm(), results)
        print(f"  RFM first: {said(done)}")
        # The second rescore of a tenant counts every buyer too (the first leaves no ranks:
        # orders may have raced it untagged); incremental from the third on (rfm5).
        done = await timed("RFM recompute (second)", rfm(), results)
        print(f"  RFM second: {said(done)}")
        # Steady: three more rescores with nothing changed, the median kept.
        again: list[float] = []
        for _ in range(3):
            done = await timed("RFM recompute (again)", rfm(), results)
            again.append(results["RFM recompute (again)"])
        results["RFM recompute (again)"] = sorted(again)[1]
        print(
            f"  RFM again: {said(done)}; {', '.join(f'{t:.3f}' for t in again)} s, the median kept"
        )
        # A day's orders: 1 % of the buyers bought again, their inputs changed as the order
        # paths change them (the first change since the rescore holds the inputs it ranked,
        # tagged with its generation), then a rescore: incremental, it reads those rows.
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE customer_value v SET"
                    " held_last_order_at = CASE WHEN v.held_generation = c.generation"
                    "  THEN v.held_last_order_at ELSE v.last_order_at END,"
                    " held_order_count = CASE WHEN v.held_generation = c.generation"
                    "  THEN v.held_order_count ELSE v.order_count END,"
                    " held_revenue_minor = CASE WHEN v.held_generation = c.generation"
                    "  THEN v.held_revenue_minor ELSE v.revenue_minor END,"
                    " held_generation = c.generation,"
                    " order_count = v.order_count + 1, revenue_minor = v.revenue_minor + 5000,"
                    " last_order_at = CAST(:now AS timestamptz)"
                    " FROM rfm_cut_offs c WHERE c.tenant_id = v.tenant_id AND v.tenant_id = :t"
                    " AND v.order_count > 0 AND hashtext(v.customer_id) % 100 = 0"
                ),
                {"t": TENANT, "now": now},
            )
        done = await timed("RFM after a day's orders", rfm(), results)
        print(f"  RFM after 1 % of the buyers ordered again: {said(done)}")
        # The same cut-offs counted from every buyer (what each rescore did before rfm5).
        done = await timed("RFM full (asked)", rfm(full=True), results)
        print(f"  RFM full, asked for: {said(done)}")
        # The scores are computed where they are read (since rfm4): a segment on them, and the
        # top list, read after the rescore.
        await preview(RFM_SEGMENT)  # warm
        count, sample = await median(
            "segment on RFM scores", partial(preview, RFM_SEGMENT), results
        )
        print(f"  RFM segment: {count:,} customers, sample of {len(sample)}")
        async with sessions() as session:
            tops = await median(
                "top customers (100)",
                lambda: activity.top_customers(session, TENANT, 100, recompute=False),
                results,
            )
            print(f"  top customers: {len(tops)}, first revenue {tops[0].revenue_minor:,}")
        reads = await tables_read(engine, results)
        await engine.dispose()

        scan = results["count(*) activity"]
        scan_rows = results["count(*) activity, rows"]
        value_rows = results["count(*) customer_value"]
        print()
        print(
            f"{'step':<28}{'seconds':>10}{'x count(*) activity':>22}{'x rows read':>13}"
            f"{'x count(*) customer_value':>27}{'cpu client / server':>22}"
        )
        for label, secs in results.items():
            client, server = STEP_CPU.get(label, (0.0, 0.0))
            print(
                f"{label:<28}{secs:>10.3f}{secs / scan:>22.1f}{secs / scan_rows:>13.1f}"
                f"{secs / value_rows:>27.1f}{client:>13.2f} / {server:.2f}"
            )
        # The goals, each against count(*) of activity (the table segments and the sweep
        # read). The RFM rescore reads only customer_value: its ratios to that table's count(*)
        # are printed beside them (same goals).
        print(f"ratio segment_x {results['segment (5 conditions)'] / scan:.1f} goal 1.5")
        # No goal: the empty previews' multiples of count(*) (segment6).
        for label in ("empty segment", "RFM segment before a rescore"):
            print(f"  {label}: {results[label] / scan:.2f} x count(*) activity")
        # The same goal against the sum of count(*) of every table the query read (EXPLAIN of
        # the statement it sent); the steps on the scores have no goal: their multiple only.
        for label in READS:
            if label not in reads:
                continue
            tables = sorted(reads[label])
            base = sum(results[f"count(*) {t}"] for t in tables)
            multiple = results[label] / base
            print(
                f"  {label} read {', '.join(tables)}: {multiple:.1f} x their count(*) "
                f"({base:.3f} s together)"
            )
            if label == "segment (5 conditions)":
                print(f"ratio segment_x_tables_read {multiple:.1f} goal 1.5")
        print(f"ratio sweep_one_day_x {results['lifecycle sweep (1 day)'] / scan:.1f} goal 3")
        if full:
            print(f"ratio sweep_full_x {results['lifecycle sweep (all due)'] / scan:.1f} goal 10")
        for ratio, label, goal in (
            ("rfm_first_x", "RFM recompute (first)", 10),
            ("rfm_steady_x", "RFM recompute (again)", 3),
            ("rfm_after_day_x", "RFM after a day's orders", 3),
        ):
            print(f"ratio {ratio} {results[label] / scan:.1f} goal {goal}")
            print(f"ratio {ratio}_value_table {results[label] / value_rows:.1f} goal {goal}")
    finally:
        if not keep:
            await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# The reads the "count(*) over the same tables" is taken of, per step: what EXPLAIN of
# the step's last SELECT names (a segment on scores also reads customer_value and rfm_cut_offs).
READS = ("segment (5 conditions)", "segment on RFM scores", "top customers (100)")


def _relations(plan: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(plan, dict):
        if "Relation Name" in plan:
            found.add(plan["Relation Name"])
        for item in plan.values():
            found |= _relations(item)
    elif isinstance(plan, list):
        for item in plan:
            found |= _relations(item)
    return found


async def tables_read(engine: AsyncEngine, results: dict[str, float]) -> dict[str, set[str]]:
    """For each step in READS: the tables its SELECT read (EXPLAIN), each one's `count(*)`
    timed into `results` as `count(*) <table>` when not there yet."""
    reads: dict[str, set[str]] = {}
    async with engine.connect() as conn:
        for label in READS:
            if label not in STEP_SELECT:
                continue
            statement, parameters = STEP_SELECT[label]
            plan = await conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
            raw = plan.scalar()
            reads[label] = _relations(json.loads(raw) if isinstance(raw, str) else raw)
            for table in sorted(reads[label]):
                if f"count(*) {table}" not in results:
                    stmt = text(f"SELECT count(*) FROM {table}")
                    await conn.execute(stmt)  # warm
                    await median(f"count(*) {table}", partial(conn.scalar, stmt), results)
    return reads


def _per_customer(label: str, customers: int) -> None:
    """SQL statements of a sweep per customer it examined."""
    sent = STEP_STATEMENTS[label]
    print(f"    {sent:,} statements, {sent / max(customers, 1):.3f} per customer examined")


async def rules_change(
    sessions: Any,
    activity: ActivityService,
    now: datetime,
    results: dict[str, float],
    *,
    in_request: bool,
) -> None:
    """A rules change that moves customers: the request (rules and marker only), then the
    background review in batches of REVIEW_BATCH, each its own transaction (the longest kept:
    how long a batch holds its rows' locks). `in_request`: as before, the rules and the review
    of every customer in the request's one transaction."""

    if in_request:

        async def before() -> None:
            async with sessions() as s, s.begin():
                await RulesRepository().put(s, TENANT, Rules(expected_cycle_days=21))
                await activity.sweep(s, TENANT, now, every=True)

        await timed("rules change (request)", before(), results)
        return

    async def request() -> None:
        async with sessions() as s, s.begin():
            await activity.set_rules(s, TENANT, {"expected_cycle_days": 21}, now)

    await timed("rules change (request)", request(), results)
    examined = changed = 0
    longest = 0.0
    start, cpu = time.perf_counter(), (time.process_time(), _server_cpu())
    while True:
        t0 = time.perf_counter()
        async with sessions() as s, s.begin():
            step = await activity.review_step(s, TENANT, now)
        longest = max(longest, time.perf_counter() - t0)
        if step is None:
            break
        examined, changed = examined + step.examined, changed + step.changed
        if step.finished:
            break
    results["rules review (all batches)"] = time.perf_counter() - start
    STEP_CPU["rules review (all batches)"] = (
        time.process_time() - cpu[0],
        _server_cpu() - cpu[1],
    )
    results["rules review (longest batch)"] = longest
    print(f"  rules change review: {examined:,} customers, {changed:,} stage changes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--generate-only",
        action="store_true",
        help="generate, keep the database and time nothing (for --reuse)",
    )
    parser.add_argument(
        "--reuse",
        metavar="DATABASE",
        default="",
        help="time a copy (CREATE DATABASE … TEMPLATE) of a database --generate-only left",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="20,000 customers / 200,000 orders with the full sweep: a few seconds per step",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="2,000 customers / 20,000 orders with the full sweep: does it run",
    )
    parser.add_argument(
        "--python-sweep",
        action="store_true",
        help="time the sweeps with the rules in Python (SQLite's path; PostgreSQL's before the "
        "set-based review), for a before/after on the same data",
    )
    parser.add_argument(
        "--full-sweep",
        action="store_true",
        help="also time a sweep with every customer due (as after a rules change)",
    )
    parser.add_argument(
        "--review-in-request",
        action="store_true",
        help="with --full-sweep: time a rules change as before, every customer reviewed in the "
        "request's transaction (for a before/after on the same data)",
    )
    args = parser.parse_args()
    if args.quick:
        args.customers, args.orders, args.full_sweep = 20_000, 200_000, True
    if args.smoke:
        args.customers, args.orders, args.full_sweep = 2_000, 20_000, True
    install(STATEMENTS)
    _capture_selects()
    asyncio.run(
        run(
            args.customers,
            args.orders,
            args.keep,
            full=args.full_sweep,
            generate_only=args.generate_only,
            reuse=args.reuse,
            python_sweep=args.python_sweep,
            review_in_request=args.review_in_request,
        )
    )


if __name__ == "__main__":
    main()
