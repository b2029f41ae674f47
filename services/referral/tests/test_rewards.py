"""Rewards: earned on the program's trigger, held for the refund window, granted once, revoked by
a refund or a deleted rep within the hold. Observed through gRPC and the published events."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.events.v1 import conversion_events_pb2 as conv
from closedloop.events.v1 import referral_events_pb2 as ev
from closedloop.referral.v1 import referral_pb2 as pb
from loopkit.events import new_envelope, unpack
from loopkit_dev.testing import eventually
from referral_helpers import Env, at

DAY = 86400


async def release(env: Env, days: float) -> int:
    answer = await env.stub.ReleaseDueRewards(
        pb.ReleaseDueRewardsRequest(
            tenant_id=env.tenant, as_of=at(datetime.now(UTC) + timedelta(days=days))
        )
    )
    return answer.granted


async def test_the_first_paid_order_converts_and_rewards_after_the_hold(env: Env) -> None:
    program = await env.program()
    referrer, newcomer, found = await env.referred(program)
    await env.paid(newcomer, order_id="ord-1")

    [converted] = await env.wait_events("referral.converted")
    assert converted.customer_id == newcomer
    event = unpack(converted, ev.ReferralConverted)
    assert event.referrer_customer_id == referrer and event.order_id == "ord-1"
    rewards = await env.wait_rewards(2, referral_id=found.referral.referral_id)
    assert {(r.level, r.beneficiary_customer_id, r.reward.points, r.status) for r in rewards} == {
        (1, referrer, 500, pb.REWARD_STATUS_PENDING),
        (0, newcomer, 100, pb.REWARD_STATUS_PENDING),
    }
    assert await env.events("reward.granted") == []

    assert await release(env, 13) == 0  # still inside the 14-day refund window
    assert await release(env, 15) == 2
    granted = await env.wait_events("reward.granted", 2)
    by_customer = {e.customer_id: unpack(e, ev.RewardGranted) for e in granted}
    assert by_customer[referrer].points == 500 and by_customer[referrer].level == 1
    assert by_customer[referrer].kind == ev.REWARD_KIND_POINTS
    assert by_customer[newcomer].points == 100 and by_customer[newcomer].level == 0
    assert await release(env, 30) == 0  # never twice
    ledger = (await env.get_referral(newcomer)).ledger
    assert [(e.from_status, e.to_status) for e in ledger].count(("approved", "granted")) == 2


async def test_an_order_handled_before_the_lead_still_converts(env: Env) -> None:
    program = await env.program()
    referrer, _ = await env.customer("a")
    code = await env.code(referrer, program)
    newcomer, _ = await env.customer("b")
    # The lead happened first, but conversion's stream is handled before acquisition's.
    lead = new_envelope(
        producer="acquisition",
        event_type="lead.captured",
        tenant_id=env.tenant,
        customer_id=newcomer,
        payload=acq.LeadCaptured(
            lead_id="lead-early", attribution=acq.Attribution(referral_code=code)
        ),
    )
    await env.paid(newcomer, order_id="ord-before-lead")
    await env.settled()
    await env.republish(lead)

    found = await env.wait_referral(newcomer)
    assert found.referral.status == pb.REFERRAL_STATUS_APPROVED
    assert found.referral.order_id == "ord-before-lead"
    rewards = await env.wait_rewards(2, referral_id=found.referral.referral_id)
    assert {r.level for r in rewards} == {0, 1}


async def test_the_same_order_paid_twice_gives_one_reward(env: Env) -> None:
    program = await env.program()
    _, newcomer, found = await env.referred(program)
    first = await env.paid(newcomer, order_id="ord-dup")
    await env.republish(first, dedupe=False)  # redelivered
    await env.paid(newcomer, order_id="ord-dup")  # published again under a new event id
    await env.paid(newcomer, order_id="ord-next")  # and a repurchase
    await env.settled()
    rewards = await env.rewards(referral_id=found.referral.referral_id)
    assert sorted(r.level for r in rewards) == [0, 1]
    assert (
        len([e for e in await env.events("referral.converted") if e.customer_id == newcomer]) == 1
    )


async def test_orders_paid_concurrently_give_one_reward(env: Env) -> None:
    program = await env.program()
    _, newcomer, found = await env.referred(program)
    await asyncio.gather(*(env.paid(newcomer) for _ in range(6)))
    await env.settled()
    rewards = await env.rewards(referral_id=found.referral.referral_id)
    assert sorted(r.level for r in rewards) == [0, 1]


async def test_a_refund_inside_the_hold_revokes_the_reward(env: Env) -> None:
    program = await env.program()
    referrer, newcomer, found = await env.referred(program)
    await env.paid(newcomer, order_id="ord-r")
    await env.wait_rewards(2, referral_id=found.referral.referral_id)

    await env.refunded(newcomer, "ord-r")

    revoked = await env.wait_events("reward.revoked", 2)
    assert {e.customer_id for e in revoked} == {referrer, newcomer}
    assert {unpack(e, ev.RewardRevoked).reason for e in revoked} == {"order_refunded"}
    rewards = await env.rewards(referral_id=found.referral.referral_id)
    assert {r.status for r in rewards} == {pb.REWARD_STATUS_VOIDED}
    assert await release(env, 30) == 0


async def test_a_refund_of_another_order_or_a_partial_one_changes_nothing(env: Env) -> None:
    program = await env.program()
    _, newcomer, found = await env.referred(program)
    await env.paid(newcomer, order_id="ord-first", amount=10_000)
    await env.paid(newcomer, order_id="ord-second")
    await env.wait_rewards(2, referral_id=found.referral.referral_id)
    await env.refunded(newcomer, "ord-second")
    partial = conv.OrderRefunded(
        order_id="ord-first",
        refunded=c.Money(currency="CNY", amount_minor=3_000),
        full=False,
        refunded_total=c.Money(currency="CNY", amount_minor=3_000),
        order_amount=c.Money(currency="CNY", amount_minor=10_000),
    )
    await env.publish("conversion", "order.refunded", newcomer, partial)
    await env.settled()
    assert await env.events("reward.revoked") == []
    rewards = await env.rewards(referral_id=found.referral.referral_id)
    assert {r.status for r in rewards} == {pb.REWARD_STATUS_PENDING}


async def test_a_refund_after_an_early_grant_reverses_the_points(env: Env) -> None:
    program = await env.program()
    referrer, newcomer, found = await env.referred(program)
    await env.paid(newcomer, order_id="ord-g")
    await env.wait_rewards(2, referral_id=found.referral.referral_id)
    # Granted by a release that looked ahead (an injected clock); the refund comes in the hold.
    assert await release(env, 15) == 2

    await env.refunded(newcomer, "ord-g")

    revoked = await env.wait_events("reward.revoked", 2)
    points = {e.customer_id: unpack(e, ev.RewardRevoked).points for e in revoked}
    assert points == {referrer: 500, newcomer: 100}
    rewards = await env.rewards(beneficiary_customer_id=referrer)
    assert [r.status for r in rewards] == [pb.REWARD_STATUS_VOIDED]


async def test_a_refund_after_the_hold_changes_nothing(env: Env) -> None:
    program = await env.program(hold_seconds=DAY)
    _, newcomer, found = await env.referred(program)
    await env.paid(newcomer, order_id="ord-late")
    await env.wait_rewards(2, referral_id=found.referral.referral_id)
    await env.refunded(newcomer, "ord-late", occurred_at=datetime.now(UTC) + timedelta(days=2))
    await env.settled()
    assert await env.events("reward.revoked") == []
    assert await release(env, 2) == 2


async def test_the_newcomer_deleting_the_rep_inside_the_hold_revokes(env: Env) -> None:
    program = await env.program()
    _, newcomer, found = await env.referred(program)
    await env.paid(newcomer)
    await env.wait_rewards(2, referral_id=found.referral.referral_id)
    await env.publish(
        "conversion",
        "ownership.ended",
        newcomer,
        conv.OwnershipEnded(rep_id="rep-1", reason=conv.OWNERSHIP_END_REASON_REP_DELETED_CUSTOMER),
    )
    await env.settled()
    assert await env.events("reward.revoked") == []
    await env.publish(
        "conversion",
        "ownership.ended",
        newcomer,
        conv.OwnershipEnded(rep_id="rep-1", reason=conv.OWNERSHIP_END_REASON_CUSTOMER_DELETED_REP),
    )
    revoked = await env.wait_events("reward.revoked", 2)
    assert {unpack(e, ev.RewardRevoked).reason for e in revoked} == {"customer_deleted_rep"}


async def test_an_order_above_the_amount_is_what_qualifies(env: Env) -> None:
    program = await env.program(
        trigger=pb.REWARD_TRIGGER_ORDER_ABOVE_AMOUNT,
        min_order_amount=c.Money(currency="CNY", amount_minor=50_000),
        newcomer_reward=pb.Reward(),
    )
    _, newcomer, found = await env.referred(program)
    await env.paid(newcomer, amount=10_000)
    await env.settled()
    assert await env.rewards(referral_id=found.referral.referral_id) == []
    await env.paid(newcomer, order_id="ord-big", amount=60_000)
    [reward] = await env.wait_rewards(1, referral_id=found.referral.referral_id)
    assert reward.level == 1


async def test_a_lead_trigger_with_no_hold_grants_at_once_in_cash(env: Env) -> None:
    program = await env.program(
        trigger=pb.REWARD_TRIGGER_LEAD,
        hold_seconds=0,
        referrer_reward=pb.Reward(
            kind=ev.REWARD_KIND_CASH, cash=c.Money(currency="CNY", amount_minor=2_000)
        ),
        newcomer_reward=pb.Reward(kind=ev.REWARD_KIND_COUPON, coupon_template_id="tpl-welcome"),
    )
    referrer, newcomer, _ = await env.referred(program)
    granted = await env.wait_events("reward.granted", 2)
    by_customer = {e.customer_id: unpack(e, ev.RewardGranted) for e in granted}
    assert by_customer[referrer].cash.amount_minor == 2_000
    assert by_customer[newcomer].coupon_template_id == "tpl-welcome"


async def test_the_periodic_sweep_grants_when_the_hold_ends(env: Env) -> None:
    program = await env.program(trigger=pb.REWARD_TRIGGER_LEAD, hold_seconds=1)
    referrer, _, found = await env.referred(program)

    async def granted() -> bool:
        rewards = await env.rewards(referral_id=found.referral.referral_id)
        return bool(rewards) and all(r.status == pb.REWARD_STATUS_GRANTED for r in rewards)

    await eventually(granted)

    async def published() -> bool:
        return referrer in {e.customer_id for e in await env.events("reward.granted")}

    await eventually(published)  # the event follows the commit through the outbox


async def test_two_levels_reward_the_referrers_referrer_with_less(env: Env) -> None:
    program = await env.program(levels=2, level2_percent=40, newcomer_reward=pb.Reward())
    a, b, _ = await env.referred(program)
    _, c_id, found = await env.referred(program, referrer=b)
    await env.paid(c_id)
    rewards = await env.wait_rewards(2, referral_id=found.referral.referral_id)
    assert {(r.level, r.beneficiary_customer_id, r.reward.points) for r in rewards} == {
        (1, b, 500),
        (2, a, 200),
    }


async def test_the_cap_per_referrer_per_period_holds(env: Env) -> None:
    program = await env.program(cap_per_period=1, cap_period_days=30, newcomer_reward=pb.Reward())
    referrer, _ = await env.customer("a")
    _, first, _ = await env.referred(program, referrer=referrer)
    _, second, _ = await env.referred(program, referrer=referrer)
    await env.paid(first)
    await env.paid(second)
    await env.settled()
    rewards = await env.rewards(beneficiary_customer_id=referrer)
    assert sorted((r.status, r.reason) for r in rewards) == [
        (pb.REWARD_STATUS_VOIDED, "cap_reached"),
        (pb.REWARD_STATUS_PENDING, ""),
    ]
