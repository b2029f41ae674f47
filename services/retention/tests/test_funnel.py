"""GetFunnel: the TLSRRR read model fed by the producers' events, checked against figures the
test works out by hand from the customers it drove (with a merge, a repeat submission, a referred
newcomer who paid, another tenant, an erasure, redeliveries and a rebuild from the streams)."""

from __future__ import annotations

import contextlib
import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import grpc
from nats.aio.client import Client
from sqlalchemy import text
from ulid import ULID

from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.events.v1 import conversion_events_pb2 as conv
from closedloop.events.v1 import identity_events_pb2 as idev
from closedloop.events.v1 import referral_events_pb2 as ref
from closedloop.retention.v1 import retention_pb2 as pb
from closedloop_retention.main import DEFINITION
from closedloop_retention.transport.rebuild_funnel import rebuild
from loopkit_dev.testing import RunningService, eventually
from retention_helpers import Stub, customer, paid, publish, rpc_error, tenant, ts

START = datetime(2026, 9, 1, tzinfo=UTC)
END = datetime(2026, 10, 1, tzinfo=UTC)
STEPS = [f.name for f in pb.FunnelSteps.DESCRIPTOR.fields]


def sep(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 9, day, hour, tzinfo=UTC)


async def touch(nc: Client, t: str, cid: str, at: datetime, channel: str = "ch-a") -> None:
    event = acq.TouchRecorded(
        touch_id=str(ULID()),
        kind=acq.TOUCH_KIND_SCAN,
        channel_id=channel,
        campaign_id="camp-1",
        channel_kind="qr_permanent",
    )
    await publish(nc, "acquisition", "touch.recorded", t, cid, event, at=at)


async def lead(
    nc: Client, t: str, cid: str, at: datetime, *, channel: str = "ch-a", referrer: str = ""
) -> None:
    attribution = acq.Attribution(
        first_channel_id=channel, first_campaign_id="camp-1", referrer_customer_id=referrer
    )
    event = acq.LeadCaptured(
        lead_id=str(ULID()), campaign_id="camp-1", channel_id=channel, attribution=attribution
    )
    await publish(nc, "acquisition", "lead.captured", t, cid, event, at=at)


async def assigned(nc: Client, t: str, cid: str, at: datetime) -> None:
    event = conv.LeadAssigned(lead_id=str(ULID()), rep_id="rep-1", rule="round_robin")
    await publish(nc, "conversion", "lead.assigned", t, cid, event, at=at)


async def funnel(stub: Stub, t: str, **kw: object) -> pb.GetFunnelResponse:
    req = pb.GetFunnelRequest(tenant_id=t, to=ts(END), **kw)  # type: ignore[arg-type]
    getattr(req, "from").CopyFrom(ts(START))
    return await stub.GetFunnel(req)


def steps(p: pb.FunnelPeriod) -> dict[str, int]:
    return {name: getattr(p.steps, name) for name in STEPS}


async def settle(
    stub: Stub, t: str, expected: dict[str, int], **kw: object
) -> pb.GetFunnelResponse:
    """The funnel once its total reads `expected` (or as it stands when time runs out)."""

    async def matches() -> bool:
        return steps((await funnel(stub, t, **kw)).total) == expected

    with contextlib.suppress(AssertionError):
        await eventually(matches)
    found = await funnel(stub, t, **kw)
    assert steps(found.total) == expected
    return found


class Drive:
    """What the test did, step by step, so the expected figures are worked out from it."""

    def __init__(self) -> None:
        self.first: dict[str, dict[str, datetime]] = defaultdict(dict)
        self.orders: list[datetime] = []

    def reach(self, cid: str, step: str, at: datetime) -> None:
        known = self.first[cid].get(step)
        self.first[cid][step] = at if known is None else min(known, at)

    def expected(self, start_of: object = None) -> dict[object, dict[str, int]]:
        out: dict[object, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STEPS, 0))
        for reached in self.first.values():
            for step, at in reached.items():
                out[start_of(at) if callable(start_of) else None][step] += 1
        for at in self.orders:
            out[start_of(at) if callable(start_of) else None]["paid_orders"] += 1
        return out

    def median(self, earlier: str, later: str) -> float:
        gaps = [
            (r[later] - r[earlier]).total_seconds()
            for r in self.first.values()
            if earlier in r and later in r and r[earlier] <= r[later]
        ]
        return statistics.median(gaps) if gaps else 0.0


def monday(at: datetime) -> datetime:
    day = datetime(at.year, at.month, at.day, tzinfo=UTC)
    return day - timedelta(days=day.weekday())


async def test_funnel_matches_the_customers_driven(  # noqa: PLR0915 - one story, told in order
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    nc, t, other = nats_client, tenant(), tenant()
    a, b, c, d, m1, m2 = (customer() for _ in range(6))
    drive = Drive()

    # a: scanned, left a lead, assigned, paid twice (a repeat buyer), and referred d.
    await touch(nc, t, a, sep(2, 10))
    await lead(nc, t, a, sep(2, 12))
    await assigned(nc, t, a, sep(3))
    await paid(nc, t, a, 10, at=sep(5), order_id="o-a1")
    await paid(nc, t, a, 20, at=sep(12), order_id="o-a2")
    for step, at in [("exposed", sep(2, 10)), ("leads", sep(2)), ("assigned", sep(3))]:
        drive.reach(a, step, at)
    drive.reach(a, "first_paid", sep(5))
    drive.reach(a, "repeat_buyers", sep(12))
    drive.orders += [sep(5), sep(12)]

    # b: scanned and submitted the form, then submitted again (not a new lead).
    await touch(nc, t, b, sep(3, 10))
    await lead(nc, t, b, sep(3, 12))
    await publish(
        nc,
        "acquisition",
        "lead.resubmitted",
        t,
        b,
        acq.LeadResubmitted(lead_id=str(ULID()), campaign_id="camp-1", submissions=2),
        at=sep(10),
    )
    await lead(nc, t, b, sep(10))  # a second form on another day: still one lead
    drive.reach(b, "exposed", sep(3, 10))
    drive.reach(b, "leads", sep(3))

    # c: only scanned.
    await touch(nc, t, c, sep(4))
    drive.reach(c, "exposed", sep(4))

    # d: a newcomer referred by a, on the referral channel, assigned, paid; referral converted.
    await lead(nc, t, d, sep(6, 9), channel="ch-ref", referrer=a)
    await assigned(nc, t, d, sep(6, 11))
    order = await paid(nc, t, d, 30, at=sep(8), order_id="o-d1")
    await publish(nc, "conversion", "order.paid", t, d, conv.OrderPaid(), env=order)  # redelivery
    await paid(nc, t, d, 30, at=sep(8), order_id="o-d1")  # the same order again, new event id
    await publish(
        nc,
        "referral",
        "referral.converted",
        t,
        d,
        ref.ReferralConverted(referral_id=str(ULID()), referrer_customer_id=a, order_id="o-d1"),
        at=sep(8, 13),
    )
    for step, at in [("exposed", sep(6, 9)), ("leads", sep(6, 9)), ("assigned", sep(6, 11))]:
        drive.reach(d, step, at)
    drive.reach(d, "first_paid", sep(8))
    drive.reach(d, "referred_newcomers", sep(6, 9))
    drive.reach(d, "referred_paid", sep(8, 13))
    drive.reach(a, "referrers", sep(6, 9))
    drive.orders.append(sep(8))

    # m1 and m2: one person known twice, each with a lead and an order; identity merges them.
    await lead(nc, t, m1, sep(7))
    await lead(nc, t, m2, sep(9))
    await paid(nc, t, m1, 5, at=sep(10), order_id="o-m1")
    await paid(nc, t, m2, 5, at=sep(11), order_id="o-m2")
    merged = idev.CustomerMerged(survivor_id=m1, merged_id=m2, reason="same person")
    await publish(nc, "identity", "customer.merged", t, m1, merged, at=sep(20))
    await paid(nc, t, m2, 5, at=sep(21), order_id="o-m3")  # late, under the merged-away id
    for step, at in [("exposed", sep(7)), ("leads", sep(7)), ("first_paid", sep(10))]:
        drive.reach(m1, step, at)
    drive.reach(m1, "repeat_buyers", sep(11))
    drive.orders += [sep(10), sep(11), sep(21)]

    # Another tenant's lead never shows in this one.
    await lead(nc, other, customer(), sep(2))

    whole = drive.expected()[None]
    assert whole["leads"] == 4 and whole["exposed"] == 5 and whole["paid_orders"] == 6
    found = await settle(stub, t, whole, granularity=pb.FUNNEL_GRANULARITY_WEEK)

    weekly = drive.expected(monday)
    assert {p.start.ToDatetime(tzinfo=UTC): steps(p) for p in found.periods} == weekly
    rates = found.total.rates
    assert rates.referral_share_of_leads == 1 / 4
    assert rates.viral_coefficient == 1 / 3
    assert rates.exposed_to_lead == 4 / 5
    assert rates.first_paid_to_repeat == 2 / 3
    medians = found.total.medians
    assert medians.exposed_to_lead_s == drive.median("exposed", "leads") == 3600.0
    assert medians.lead_to_assigned_s == drive.median("leads", "assigned")
    assert medians.assigned_to_first_paid_s == drive.median("assigned", "first_paid")
    assert medians.first_paid_to_repeat_s == drive.median("first_paid", "repeat_buyers")

    # Only the customers who came through the referral channel.
    by_channel = await funnel(stub, t, channel_id="ch-ref")
    assert steps(by_channel.total) == {
        **dict.fromkeys(STEPS, 0),
        "exposed": 1,
        "leads": 1,
        "assigned": 1,
        "first_paid": 1,
        "referred_newcomers": 1,
        "referred_paid": 1,
        "paid_orders": 1,
    }
    days = await funnel(stub, t, granularity=pb.FUNNEL_GRANULARITY_DAY)
    daily = drive.expected(lambda at: datetime(at.year, at.month, at.day, tzinfo=UTC))
    assert {p.start.ToDatetime(tzinfo=UTC): steps(p) for p in days.periods} == daily
    months = await funnel(stub, t, granularity=pb.FUNNEL_GRANULARITY_MONTH)
    assert [(p.start.ToDatetime(tzinfo=UTC), steps(p)) for p in months.periods] == [(START, whole)]
    # Cohorts by first-exposure week: a, b, c, d first seen in the week of Aug 31, m1 on Sep 7.
    orders_of = {a: 2, d: 1, m1: 3}
    cohorts: dict[datetime, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STEPS, 0))
    for cid, reached in drive.first.items():
        week = monday(reached["exposed"])
        for step in reached:
            cohorts[week][step] += 1
        cohorts[week]["paid_orders"] += orders_of.get(cid, 0)
    assert set(cohorts) == {datetime(2026, 8, 31, tzinfo=UTC), datetime(2026, 9, 7, tzinfo=UTC)}
    request = pb.GetFunnelCohortsRequest(tenant_id=t, to=ts(END))
    getattr(request, "from").CopyFrom(ts(START))
    found_cohorts = (await stub.GetFunnelCohorts(request)).cohorts
    assert {
        c.week.ToDatetime(tzinfo=UTC): {n: getattr(c.steps, n) for n in STEPS}
        for c in found_cohorts
    } == cohorts
    isolated = await settle(stub, other, {**dict.fromkeys(STEPS, 0), "exposed": 1, "leads": 1})
    assert len(isolated.periods) == 1

    # c asks to be forgotten: they leave the funnel.
    forgotten = idev.CustomerForgotten(customer_id=c)
    await publish(nc, "identity", "customer.forgotten", t, c, forgotten, at=sep(25))
    del drive.first[c]
    await settle(stub, t, drive.expected()[None])

    # The read model loses rows (a bad deploy, a restored backup); a rebuild replays every
    # stream into an empty read model and lands on the same figures (the per-day rollup too).
    async with retention.runtime.sessions.begin() as session:
        for table in ("funnel_steps", "funnel_daily", "funnel_gap_buckets"):
            await session.execute(text(f"DELETE FROM {table} WHERE step = 'lead'"))
    assert (await funnel(stub, t)).total.steps.leads == 0
    durables = await rebuild(DEFINITION, retention.runtime.settings)
    assert "retention-funnel-conversion" in durables
    await settle(stub, t, drive.expected()[None])
    await settle(stub, other, {**dict.fromkeys(STEPS, 0), "exposed": 1, "leads": 1})


async def test_bad_ranges_are_refused(stub: Stub) -> None:
    t = tenant()
    backwards = pb.GetFunnelRequest(tenant_id=t, to=ts(START))
    getattr(backwards, "from").CopyFrom(ts(END))
    too_long = pb.GetFunnelRequest(tenant_id=t, to=ts(START + timedelta(days=401)))
    getattr(too_long, "from").CopyFrom(ts(START))
    for request in (backwards, too_long, pb.GetFunnelRequest(tenant_id=t, to=ts(END))):
        err = await rpc_error(stub.GetFunnel(request))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    err = await rpc_error(stub.GetFunnel(pb.GetFunnelRequest(to=ts(END))))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    cohorts = pb.GetFunnelCohortsRequest(tenant_id=t, to=ts(START))
    getattr(cohorts, "from").CopyFrom(ts(END))
    err = await rpc_error(stub.GetFunnelCohorts(cohorts))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
