"""A customer moves investigation → development → stable by orders and into decline when the
clock passes their own purchase cycle; negative signals move them too; every change is an event."""

from __future__ import annotations

from datetime import timedelta

from nats.aio.client import Client

from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.events.v1 import conversion_events_pb2 as conv
from closedloop.events.v1 import retention_events_pb2 as ev
from closedloop.retention.v1 import retention_pb2 as pb
from loopkit.events import unpack
from loopkit_dev.testing import eventually, read_events
from retention_helpers import (
    Stub,
    activity,
    customer,
    days_ago,
    lead,
    paid,
    publish,
    tenant,
    ts,
)

S = ev.LifecycleStage


async def stage_of(stub: Stub, t: str, cid: str) -> int:
    res = await stub.GetLifecycle(pb.GetLifecycleRequest(tenant_id=t, customer_id=cid))
    return res.stage


async def wait_orders(stub: Stub, t: str, cid: str, n: int) -> None:
    async def check() -> bool:
        a = await activity(stub, t, cid)
        return a is not None and a.order_count == n

    await eventually(check)


async def test_orders_move_a_customer_to_stable_and_time_into_decline(
    stub: Stub, nats_client: Client
) -> None:
    t, cid = tenant(), customer()
    await lead(nats_client, t, cid, at=days_ago(100))

    async def known() -> bool:
        return await activity(stub, t, cid) is not None

    await eventually(known)
    assert await stage_of(stub, t, cid) == S.LIFECYCLE_STAGE_INVESTIGATION

    await paid(nats_client, t, cid, 120, at=days_ago(90))
    await wait_orders(stub, t, cid, 1)
    assert await stage_of(stub, t, cid) == S.LIFECYCLE_STAGE_DEVELOPMENT

    await paid(nats_client, t, cid, 80, at=days_ago(70))
    await paid(nats_client, t, cid, 100, at=days_ago(50))
    await wait_orders(stub, t, cid, 3)
    a = await activity(stub, t, cid)
    assert a is not None
    assert a.revenue_minor == 30000
    assert round(a.purchase_cycle_days) == 20
    assert a.channel_id == "ch-1"
    assert a.owner_rep_id == "rep-1"
    # Stable as of its last order; the sweep at the event's time changes nothing.
    assert await stage_of(stub, t, cid) == S.LIFECYCLE_STAGE_STABLE

    # 50 days after the last order with a 20-day cycle: overdue (x1.5) → decline.
    swept = await stub.SweepLifecycle(pb.SweepLifecycleRequest(tenant_id=t))
    assert swept.examined == 1 and swept.changed == 1
    life = await stub.GetLifecycle(pb.GetLifecycleRequest(tenant_id=t, customer_id=cid))
    assert life.stage == S.LIFECYCLE_STAGE_DECLINE
    assert "overdue" in life.reason
    assert [h.to_stage for h in life.history] == [
        S.LIFECYCLE_STAGE_INVESTIGATION,
        S.LIFECYCLE_STAGE_DEVELOPMENT,
        S.LIFECYCLE_STAGE_STABLE,
        S.LIFECYCLE_STAGE_DECLINE,
    ]
    # Far later still: churned.
    await stub.SweepLifecycle(pb.SweepLifecycleRequest(tenant_id=t, as_of=ts(days_ago(-200))))
    assert await stage_of(stub, t, cid) == S.LIFECYCLE_STAGE_CHURNED

    async def published() -> list[ev.StageChanged]:
        envs = await read_events(nats_client, "RETENTION", tenant_id=t)
        return [unpack(e, ev.StageChanged) for e in envs if e.type == "stage.changed"]

    await eventually(lambda: _len_at_least(published, 5))
    changes = await published()
    assert [c.to_stage for c in changes] == [
        S.LIFECYCLE_STAGE_INVESTIGATION,
        S.LIFECYCLE_STAGE_DEVELOPMENT,
        S.LIFECYCLE_STAGE_STABLE,
        S.LIFECYCLE_STAGE_DECLINE,
        S.LIFECYCLE_STAGE_CHURNED,
    ]
    assert all(c.reason for c in changes)


async def _len_at_least(fetch: object, n: int) -> bool:
    return len(await fetch()) >= n  # type: ignore[operator]


async def test_tenant_rules_set_the_expected_cycle(stub: Stub, nats_client: Client) -> None:
    t, cid = tenant(), customer()
    res = await stub.SetLifecycleRules(
        pb.SetLifecycleRulesRequest(
            tenant_id=t,
            rules=pb.LifecycleRules(expected_cycle_days=10),
            fields=["expected_cycle_days"],
        )
    )
    assert res.rules.expected_cycle_days == 10
    assert res.rules.cap_messages == 4  # the defaults stay
    await paid(nats_client, t, cid, 50, at=days_ago(20))
    await wait_orders(stub, t, cid, 1)
    # One order 20 days ago; the tenant expects one every 10 days (x1.5 = 15): decline.
    await stub.SweepLifecycle(pb.SweepLifecycleRequest(tenant_id=t))
    assert await stage_of(stub, t, cid) == S.LIFECYCLE_STAGE_DECLINE


async def test_unsubscribe_and_deleting_the_rep_are_negative_signals(
    stub: Stub, nats_client: Client
) -> None:
    t, a, b = tenant(), customer(), customer()
    await paid(nats_client, t, a, 50)
    await paid(nats_client, t, b, 50)
    await wait_orders(stub, t, a, 1)
    await wait_orders(stub, t, b, 1)
    assert await stage_of(stub, t, a) == S.LIFECYCLE_STAGE_DEVELOPMENT

    await publish(
        nats_client,
        "acquisition",
        "touch.recorded",
        t,
        a,
        acq.TouchRecorded(touch_id="t1", kind=acq.TOUCH_KIND_UNSUBSCRIBE, channel_id="ch-1"),
    )
    await publish(
        nats_client,
        "conversion",
        "ownership.ended",
        t,
        b,
        conv.OwnershipEnded(rep_id="rep-1", reason=conv.OWNERSHIP_END_REASON_CUSTOMER_DELETED_REP),
    )

    async def both_declined() -> bool:
        return (await stage_of(stub, t, a), await stage_of(stub, t, b)) == (
            S.LIFECYCLE_STAGE_DECLINE,
            S.LIFECYCLE_STAGE_DECLINE,
        )

    await eventually(both_declined)
    life = await stub.GetLifecycle(pb.GetLifecycleRequest(tenant_id=t, customer_id=a))
    assert "unsubscribed" in life.reason
    life = await stub.GetLifecycle(pb.GetLifecycleRequest(tenant_id=t, customer_id=b))
    assert "deleted the rep" in life.reason
    act = await activity(stub, t, a)
    assert act is not None and act.unsubscribed


async def test_interactions_and_referrals_feed_the_activity_model(
    stub: Stub, nats_client: Client
) -> None:
    from closedloop.events.v1 import referral_events_pb2 as ref

    t, referrer, newcomer = tenant(), customer(), customer()
    when = days_ago(1)
    await publish(
        nats_client,
        "acquisition",
        "interaction.recorded",
        t,
        referrer,
        acq.InteractionRecorded(interaction_id="i1", kind="text", app_id="wx"),
        at=when,
    )
    await publish(
        nats_client,
        "referral",
        "referral.converted",
        t,
        newcomer,
        ref.ReferralConverted(referral_id="r1", referrer_customer_id=referrer, order_id="o1"),
    )

    async def counted() -> bool:
        a = await activity(stub, t, referrer)
        return a is not None and a.referrals_made == 1 and a.HasField("last_interaction_at")

    await eventually(counted)
    a = await activity(stub, t, referrer)
    assert a is not None
    got = a.last_interaction_at.ToDatetime().replace(tzinfo=when.tzinfo)
    assert abs(got - when) < timedelta(seconds=1)
    assert await activity(stub, t, newcomer) is not None
