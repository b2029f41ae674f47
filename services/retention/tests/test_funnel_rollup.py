"""GetFunnel's per-day rollup (funnel_daily, funnel_gap_buckets): after records, an attribution
that moves a customer to another channel, a merge, its unmerge, an erasure and a rebuild from the
streams, it equals a recount of funnel_steps; and a range that starts and ends mid-day (whole days
from the rollup, edge days from funnel_steps) gives the exact counts."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from sqlalchemy import delete, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from test_funnel import Drive, assigned, lead, sep, settle, steps, touch
from test_funnel_unmerge import total
from ulid import ULID

import closedloop_retention
from closedloop.events.v1 import identity_events_pb2 as idev
from closedloop.retention.v1 import retention_pb2 as pb
from closedloop_retention.funnel.rollup import GAP_BOUNDS_MS, bucket_of
from closedloop_retention.funnel.service import FunnelService, Source
from closedloop_retention.funnel.views import FunnelQuery
from closedloop_retention.main import DEFINITION
from closedloop_retention.models import (
    FunnelDailyRow,
    FunnelGapBoundRow,
    FunnelGapBucketRow,
    FunnelStepRow,
)
from closedloop_retention.transport.rebuild_funnel import rebuild
from loopkit.db import transact
from loopkit.timestamps import utc
from loopkit_dev.testing import RunningService
from retention_helpers import Stub, customer, paid, publish, tenant, ts


async def assert_rollup_is_a_recount(retention: RunningService, t: str) -> None:
    """The tenant's rollup rows (those not 0) are what funnel_steps' rows add up to."""
    async with retention.runtime.sessions() as s:
        await assert_recount_in(s, t)


async def assert_recount_in(s: AsyncSession, t: str) -> None:
    rows = (await s.execute(select(FunnelStepRow).where(FunnelStepRow.tenant_id == t))).all()
    daily = (await s.execute(select(FunnelDailyRow).where(FunnelDailyRow.tenant_id == t))).all()
    gaps = (
        await s.execute(select(FunnelGapBucketRow).where(FunnelGapBucketRow.tenant_id == t))
    ).all()
    counted: Counter[tuple[Any, ...]] = Counter()
    gap_n: Counter[tuple[Any, ...]] = Counter()
    gap_sum: dict[tuple[Any, ...], float] = {}
    for (row,) in rows:
        day = utc(row.at).date()
        for dim, dim_id in (
            ("all", ""),
            ("campaign", row.campaign_id),
            ("channel", row.channel_id),
        ):
            counted[(dim, dim_id, day, row.step)] += 1
            if row.gap_s is not None:
                key = (dim, dim_id, day, row.step, bucket_of(row.gap_s))
                gap_n[key] += 1
                gap_sum[key] = gap_sum.get(key, 0.0) + row.gap_s
    assert counted, "the tenant has step rows"
    found = {(r.dim, r.dim_id, r.day, r.step): r.customers for (r,) in daily if r.customers}
    assert found == dict(counted)
    found_n = {(r.dim, r.dim_id, r.day, r.step, r.bucket): r.n for (r,) in gaps if r.n}
    assert found_n == dict(gap_n)
    for (r,) in gaps:
        key = (r.dim, r.dim_id, r.day, r.step, r.bucket)
        assert r.sum_s == pytest.approx(gap_sum.get(key, 0.0), abs=1e-6)


async def assert_backfill_is_a_recount(retention: RunningService, t: str) -> None:
    """The migration's backfill (an existing read model when the rollup is added) counts the
    same; tried in a transaction that is rolled back."""
    versions = Path(closedloop_retention.__file__).parent / "migrations" / "versions"
    (path,) = versions.glob("*_daily_rollup.py")
    spec = importlib.util.spec_from_file_location("funnel_rollup_migration", path)
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    # The whole rollup is emptied and refilled while the service's consumers may still be
    # replaying every tenant's events after the rebuild: a deadlock with one of them is retried
    # (as loopkit.db.transact retries the service's own transactions).
    for attempt in range(1, 6):
        try:
            async with retention.runtime.sessions() as s:
                for table in (FunnelDailyRow, FunnelGapBucketRow):
                    await s.execute(delete(table))
                await (await s.connection()).run_sync(migration.backfill)
                await assert_recount_in(s, t)
                await s.rollback()
            return
        except DBAPIError as exc:
            if "deadlock" not in str(exc).lower() or attempt == 5:
                raise


async def test_the_rollup_is_a_recount_of_the_step_rows(
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    nc, t = nats_client, tenant()
    a, b, c, m1, m2 = (customer() for _ in range(5))
    await touch(nc, t, a, sep(2, 10))
    await lead(nc, t, a, sep(2, 12))
    await assigned(nc, t, a, sep(3))
    await paid(nc, t, a, 10, at=sep(5), order_id="o-a1")
    await paid(nc, t, a, 10, at=sep(12), order_id="o-a2")
    await lead(nc, t, b, sep(4), channel="ch-b")
    await paid(nc, t, b, 10, at=sep(6), order_id="o-b1")
    # c is first seen on ch-x, then a lead brings an earlier first touch on ch-y: c's rows move.
    await touch(nc, t, c, sep(8), channel="ch-x")
    await lead(nc, t, c, sep(7), channel="ch-y")
    await lead(nc, t, m1, sep(9))
    await paid(nc, t, m1, 5, at=sep(10), order_id="o-m1")
    await lead(nc, t, m2, sep(11), channel="ch-m2")
    await assigned(nc, t, m2, sep(11, 13))
    await paid(nc, t, m2, 5, at=sep(13), order_id="o-m2")
    apart = total(exposed=5, leads=5, assigned=2, first_paid=4, repeat_buyers=1, paid_orders=5)
    await settle(stub, t, apart)
    await assert_rollup_is_a_recount(retention, t)
    by_x = await settle(stub, t, total(), channel_id="ch-x")
    assert steps(by_x.total) == total()
    await settle(stub, t, total(exposed=1, leads=1), channel_id="ch-y")

    merge_id = str(ULID())
    merged = idev.CustomerMerged(survivor_id=m1, merged_id=m2, reason="same", merge_id=merge_id)
    await publish(nc, "identity", "customer.merged", t, m1, merged, at=sep(20))
    one = total(exposed=4, leads=4, assigned=2, first_paid=3, repeat_buyers=2, paid_orders=5)
    await settle(stub, t, one)
    await assert_rollup_is_a_recount(retention, t)

    unmerged = idev.CustomerUnmerged(
        restored_id=m2, survivor_id=m1, reason="not", merge_id=merge_id, merged_into_id=m1
    )
    await publish(nc, "identity", "customer.unmerged", t, m2, unmerged, at=sep(21))
    await settle(stub, t, apart)
    await assert_rollup_is_a_recount(retention, t)

    forgotten = idev.CustomerForgotten(customer_id=a)
    await publish(nc, "identity", "customer.forgotten", t, a, forgotten, at=sep(22))
    left = total(exposed=4, leads=4, assigned=1, first_paid=3, paid_orders=3)
    await settle(stub, t, left)
    await assert_rollup_is_a_recount(retention, t)

    # A rebuild empties the rollup with the step rows and replays both from the streams.
    await rebuild(DEFINITION, retention.runtime.settings)
    await settle(stub, t, left)
    await assert_rollup_is_a_recount(retention, t)

    await assert_backfill_is_a_recount(retention, t)


async def funnel_between(
    stub: Stub, t: str, start: datetime, end: datetime, **kw: object
) -> pb.GetFunnelResponse:
    req = pb.GetFunnelRequest(tenant_id=t, to=ts(end), **kw)  # type: ignore[arg-type]
    getattr(req, "from").CopyFrom(ts(start))
    return await stub.GetFunnel(req)


def day_of(at: datetime) -> datetime:
    return datetime(at.year, at.month, at.day, tzinfo=UTC)


async def test_a_range_off_day_boundaries_counts_exactly(
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    nc, t = nats_client, tenant()
    x1, x2, x3, x4 = (customer() for _ in range(4))
    drive = Drive()
    await touch(nc, t, x1, sep(3, 9))
    await lead(nc, t, x1, sep(3, 12))
    await assigned(nc, t, x1, sep(5, 10))
    await paid(nc, t, x1, 5, at=sep(9, 20), order_id="o-x1")
    for step, at in [("exposed", sep(3, 9)), ("leads", sep(3, 12)), ("assigned", sep(5, 10))]:
        drive.reach(x1, step, at)
    drive.reach(x1, "first_paid", sep(9, 20))
    await lead(nc, t, x2, sep(4, 6), channel="ch-b")
    await assigned(nc, t, x2, sep(10, 14))  # after the range's end
    for step, at in [("exposed", sep(4, 6)), ("leads", sep(4, 6)), ("assigned", sep(10, 14))]:
        drive.reach(x2, step, at)
    await touch(nc, t, x3, sep(2, 23))
    await lead(nc, t, x3, sep(3, 10))  # before the range's start
    drive.reach(x3, "exposed", sep(2, 23))
    drive.reach(x3, "leads", sep(3, 10))
    await lead(nc, t, x4, sep(10, 11))
    await assigned(nc, t, x4, sep(10, 12))
    await paid(nc, t, x4, 5, at=sep(10, 12), order_id="o-x4")  # on the last, partial day
    for step, at in [("exposed", sep(10, 11)), ("leads", sep(10, 11)), ("assigned", sep(10, 12))]:
        drive.reach(x4, step, at)
    drive.reach(x4, "first_paid", sep(10, 12))
    orders = [sep(9, 20), sep(10, 12)]
    await settle(stub, t, total(exposed=4, leads=4, assigned=3, first_paid=2, paid_orders=2))

    def expected(start: datetime, end: datetime) -> dict[datetime, dict[str, int]]:
        out: dict[datetime, dict[str, int]] = {}
        for reached in drive.first.values():
            for step, at in reached.items():
                if start <= at < end:
                    out.setdefault(day_of(at), total())[step] += 1
        for at in orders:
            if start <= at < end:
                out.setdefault(day_of(at), total())["paid_orders"] += 1
        return out

    start, end = sep(3, 11), sep(10, 13)
    found = await funnel_between(stub, t, start, end, granularity=pb.FUNNEL_GRANULARITY_DAY)
    days = {p.start.ToDatetime(tzinfo=UTC): steps(p) for p in found.periods}
    assert days == expected(start, end)
    assert steps(found.total)["leads"] == 3 and found.total.steps.paid_orders == 2
    # x1 lead -> assigned (2 days minus 2 h) and x4's (1 h): the only gaps in the range.
    gaps = [(sep(5, 10) - sep(3, 12)).total_seconds(), 3600.0]
    assert found.total.medians.lead_to_assigned_s == statistics.median(gaps)

    # Within one day, and by campaign and channel together: funnel_steps alone.
    one_day = await funnel_between(stub, t, sep(10, 10), sep(10, 12) + timedelta(minutes=30))
    assert steps(one_day.total) == total(
        exposed=1, leads=1, assigned=1, first_paid=1, paid_orders=1
    )
    both = await funnel_between(stub, t, start, end, campaign_id="camp-1", channel_id="ch-b")
    assert steps(both.total) == total(exposed=1, leads=1)
    by_channel = await funnel_between(stub, t, start, end, channel_id="ch-a")
    assert steps(by_channel.total) == total(
        exposed=1, leads=2, assigned=2, first_paid=2, paid_orders=2
    )


async def test_the_gap_buckets_bounds_are_the_services(retention: RunningService) -> None:
    async with retention.runtime.sessions() as s:
        found = (await s.execute(select(FunnelGapBoundRow).order_by(FunnelGapBoundRow.lo_ms))).all()
    assert [(r.lo_ms, r.bucket) for (r,) in found] == [
        (lo, k) for k, lo in enumerate(GAP_BOUNDS_MS)
    ]
    assert bucket_of(0.0) == 0 and bucket_of(0.999) == 0 and bucket_of(1.0) == 1
    bounds = GAP_BOUNDS_MS[1:]
    assert all(hi / lo <= 1.02 for lo, hi in itertools.pairwise(bounds))
    assert bounds[-1] >= 10 * 365 * 86400 * 1000  # ten years; longer gaps share the last bucket


async def test_concurrent_use_cases_keep_the_rollup_a_recount(retention: RunningService) -> None:
    """Many customers' steps recorded at once, each in its own transaction and without retries:
    all on the same days, so they share the tenant's rollup rows; none fails (no deadlock) and
    the rollup adds up."""
    runtime = retention.runtime
    funnel: FunnelService = runtime.parts["funnel"]
    t = tenant()

    async def drive(k: int) -> None:
        cid, channel = customer(), f"ch-{k % 3}"
        steps_of = [
            lambda s: funnel.touched(s, t, cid, sep(2, 9), Source("camp-1", channel)),
            lambda s: funnel.lead_captured(s, t, cid, sep(2, 10), Source("camp-1", channel)),
            lambda s: funnel.lead_assigned(s, t, cid, sep(2, 11 + k % 3)),
            lambda s: funnel.order_paid(s, t, cid, f"o-{cid}", sep(3, 9)),
        ]
        for work in steps_of:
            await transact(runtime.sessions, work, attempts=1)

    await asyncio.gather(*(drive(k) for k in range(24)))
    await assert_rollup_is_a_recount(retention, t)
    async with runtime.sessions() as s:
        found = await funnel.funnel(s, FunnelQuery(t, sep(1, 0), sep(4, 0)))
    assert found.total.customers == {"exposed": 24, "lead": 24, "assigned": 24, "first_paid": 24}
