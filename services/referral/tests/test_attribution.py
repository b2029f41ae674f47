"""Leads tied to their referrer, and the fraud checks that hold a referral for review."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.referral.v1 import referral_pb2 as pb
from referral_helpers import APP, BURST_THRESHOLD, Env, openid


async def test_a_lead_carrying_a_code_is_tied_to_the_referrer(env: Env) -> None:
    program = await env.program()
    referrer, newcomer, found = await env.referred(program)
    assert found.referral.referrer_customer_id == referrer
    assert found.referral.newcomer_customer_id == newcomer
    assert found.referral.status == pb.REFERRAL_STATUS_APPROVED
    assert found.referral.program_id == program.program_id
    assert [(e.from_status, e.to_status) for e in found.ledger] == [("", "approved")]


async def test_a_visit_inside_wechat_attributes_the_later_lead_without_a_code(env: Env) -> None:
    program = await env.program()
    referrer, _ = await env.customer("a")
    code = await env.code(referrer, program)
    newcomer, oid = await env.customer("b")
    assert (await env.visit(code, openid=oid, appid=APP)).status_code == 302

    await env.lead(newcomer, oid=oid)

    found = await env.wait_referral(newcomer)
    assert found.referral.referrer_customer_id == referrer
    assert found.referral.code == code and found.referral.visit_id


async def test_a_visit_older_than_the_attribution_window_does_not_count(env: Env) -> None:
    program = await env.program(attribution_window_seconds=86400)
    referrer, _ = await env.customer("a")
    code = await env.code(referrer, program)
    newcomer, oid = await env.customer("b")
    await env.visit(code, openid=oid, appid=APP)
    await env.wait_events("share_visited")

    lead = acq.LeadCaptured(
        lead_id="lead-late", identities=[openid(oid)], attribution=acq.Attribution()
    )
    await env.publish(
        "acquisition",
        "lead.captured",
        newcomer,
        lead,
        occurred_at=datetime.now(UTC) + timedelta(days=2),
    )
    await env.settled()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await env.get_referral(newcomer)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_first_valid_referrer_wins(env: Env) -> None:
    program = await env.program()
    first, _ = await env.customer("a1")
    second, _ = await env.customer("a2")
    first_code = await env.code(first, program)
    second_code = await env.code(second, program)
    newcomer, oid = await env.customer("b")
    await env.visit(first_code, openid=oid, appid=APP)
    await env.visit(second_code, openid=oid, appid=APP)

    await env.lead(newcomer, oid=oid)
    found = await env.wait_referral(newcomer)
    assert found.referral.referrer_customer_id == first
    # A second lead (another campaign) naming the other referrer changes nothing.
    await env.lead(newcomer, code=second_code)
    await env.settled()
    again = await env.get_referral(newcomer)
    assert again.referral.referrer_customer_id == first


async def test_a_self_referral_is_held_with_its_reason(env: Env) -> None:
    program = await env.program()
    customer, _ = await env.customer("a")
    code = await env.code(customer, program)
    await env.lead(customer, code=code)
    found = await env.wait_referral(customer)
    assert found.referral.status == pb.REFERRAL_STATUS_FLAGGED
    assert found.referral.flag_reason == "self_referral"
    await env.paid(customer)
    await env.settled()
    rewards = await env.rewards(referral_id=found.referral.referral_id)
    assert {r.status for r in rewards} == {pb.REWARD_STATUS_FLAGGED}  # waiting for review
    assert await env.events("reward.granted") == []


async def test_the_same_device_as_the_referrer_is_a_self_referral(env: Env) -> None:
    program = await env.program()
    referrer, _ = await env.customer("a")
    code = await env.code(referrer, program, device_id="dev-shared-1")
    newcomer, oid = await env.customer("b")
    await env.visit(code, openid=oid, appid=APP, device="dev-shared-1")
    await env.lead(newcomer, oid=oid)
    found = await env.wait_referral(newcomer)
    assert found.referral.flag_reason == "self_referral"


async def test_a_ring_is_held(env: Env) -> None:
    program = await env.program()
    a, newcomer_b, _ = await env.referred(program)
    b_code = await env.code(newcomer_b, program)
    await env.lead(a, code=b_code)
    found = await env.wait_referral(a)
    assert found.referral.status == pb.REFERRAL_STATUS_FLAGGED
    assert found.referral.flag_reason == "referral_ring"


async def test_an_existing_customer_does_not_count_as_a_newcomer(env: Env) -> None:
    program = await env.program()
    referrer, _ = await env.customer("a")
    code = await env.code(referrer, program)
    old, _ = await env.customer("old")
    await env.paid(old)  # a customer before anyone referred them
    await env.settled()
    await env.lead(old, code=code)
    found = await env.wait_referral(old)
    assert found.referral.flag_reason == "existing_customer"


async def test_a_burst_of_newcomers_from_one_referrer_is_held(env: Env) -> None:
    program = await env.program()
    referrer, _ = await env.customer("a")
    results = [await env.referred(program, referrer=referrer) for _ in range(BURST_THRESHOLD + 1)]
    statuses = [r[2].referral.status for r in results]
    assert statuses[:BURST_THRESHOLD] == [pb.REFERRAL_STATUS_APPROVED] * BURST_THRESHOLD
    assert results[-1][2].referral.flag_reason == "burst"


async def test_a_reviewer_approves_a_flagged_referral_and_its_rewards_follow(env: Env) -> None:
    program = await env.program(hold_seconds=0)
    referrer, _ = await env.customer("a")
    code = await env.code(referrer, program)
    old, _ = await env.customer("old")
    await env.paid(old)
    await env.settled()
    await env.lead(old, code=code)
    flagged = await env.wait_referral(old)
    queue = await env.stub.ListReferrals(
        pb.ListReferralsRequest(tenant_id=env.tenant, status=pb.REFERRAL_STATUS_FLAGGED)
    )
    assert [(r.referral_id, r.flag_reason) for r in queue.referrals] == [
        (flagged.referral.referral_id, "existing_customer")
    ]
    await env.paid(old)  # a qualifying order while flagged: rewards kept flagged, none granted
    await env.settled()
    waiting = await env.rewards(referral_id=flagged.referral.referral_id)
    assert {(r.level, r.status) for r in waiting} == {
        (1, pb.REWARD_STATUS_FLAGGED),
        (0, pb.REWARD_STATUS_FLAGGED),
    }
    assert await env.events("reward.granted") == []

    reviewed = await env.stub.ReviewReferral(
        pb.ReviewReferralRequest(
            tenant_id=env.tenant,
            referral_id=flagged.referral.referral_id,
            approve=True,
            reviewer="ops@example.com",
            note="returning customer, allowed",
        )
    )
    assert reviewed.referral.status == pb.REFERRAL_STATUS_APPROVED
    rewards = await env.rewards(referral_id=flagged.referral.referral_id)
    assert {(r.level, r.status) for r in rewards} == {
        (1, pb.REWARD_STATUS_GRANTED),
        (0, pb.REWARD_STATUS_GRANTED),
    }
    after = await env.get_referral(old)
    assert ("flagged", "approved", "ops@example.com") in [
        (e.from_status, e.to_status, e.actor) for e in after.ledger
    ]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await env.stub.ReviewReferral(
            pb.ReviewReferralRequest(
                tenant_id=env.tenant,
                referral_id=flagged.referral.referral_id,
                approve=False,
                reviewer="ops@example.com",
            )
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_rejected_referral_never_earns(env: Env) -> None:
    program = await env.program(hold_seconds=0)
    customer, _ = await env.customer("a")
    code = await env.code(customer, program)
    await env.lead(customer, code=code)
    flagged = await env.wait_referral(customer)
    await env.stub.ReviewReferral(
        pb.ReviewReferralRequest(
            tenant_id=env.tenant,
            referral_id=flagged.referral.referral_id,
            approve=False,
            reviewer="ops",
        )
    )
    await env.paid(customer)
    await env.settled()
    assert await env.rewards(referral_id=flagged.referral.referral_id) == []
    assert (await env.get_referral(customer)).referral.status == pb.REFERRAL_STATUS_REJECTED


async def test_the_same_lead_delivered_concurrently_makes_one_referral(env: Env) -> None:
    program = await env.program()
    referrer, _ = await env.customer("a")
    code = await env.code(referrer, program)
    newcomer, _ = await env.customer("b")
    await asyncio.gather(*(env.lead(newcomer, code=code) for _ in range(5)))
    await env.wait_referral(newcomer)
    await env.settled()
    tree = await env.stub.GetReferralTree(
        pb.GetReferralTreeRequest(tenant_id=env.tenant, customer_id=referrer, depth=1)
    )
    assert [n.customer_id for n in tree.nodes] == [referrer, newcomer]


async def test_bad_lookups_are_refused(env: Env) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await env.stub.GetReferral(pb.GetReferralRequest(tenant_id=env.tenant))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await env.get_referral("nobody")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await env.stub.GetReferralTree(
            pb.GetReferralTreeRequest(tenant_id=env.tenant, customer_id="x", depth=9)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_concurrent_reviews_approve_once_and_reward_once(env: Env) -> None:
    program = await env.program(hold_seconds=0, trigger=pb.REWARD_TRIGGER_LEAD)
    customer, _ = await env.customer("a")
    code = await env.code(customer, program)
    await env.lead(customer, code=code)
    flagged = await env.wait_referral(customer)
    request = pb.ReviewReferralRequest(
        tenant_id=env.tenant, referral_id=flagged.referral.referral_id, approve=True, reviewer="ops"
    )
    results = await asyncio.gather(
        *(env.stub.ReviewReferral(request) for _ in range(4)), return_exceptions=True
    )
    ok = [r for r in results if isinstance(r, pb.ReviewReferralResponse)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(ok) == 1 and len(refused) == 3
    assert {r.code() for r in refused} == {grpc.StatusCode.FAILED_PRECONDITION}
    rewards = await env.rewards(referral_id=flagged.referral.referral_id)
    assert sorted((r.level, r.status) for r in rewards) == [
        (0, pb.REWARD_STATUS_GRANTED),
        (1, pb.REWARD_STATUS_GRANTED),
    ]


async def test_a_malformed_event_is_set_aside_and_the_next_ones_still_flow(env: Env) -> None:
    program = await env.program()
    newcomer, _ = await env.customer("b")
    # A lead.captured carrying some other payload: a permanent error, dead-lettered at once.
    await env.publish("acquisition", "lead.captured", newcomer, pb.Referral(referral_id="x"))
    await env.publish("conversion", "order.paid", newcomer, pb.Referral(referral_id="y"))
    referrer, _, found = await env.referred(program)
    assert found.referral.referrer_customer_id == referrer
    await env.settled()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await env.get_referral(newcomer)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_another_tenants_referral_is_not_found(env: Env) -> None:
    program = await env.program()
    _, _, found = await env.referred(program)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await env.stub.GetReferral(
            pb.GetReferralRequest(tenant_id="other-tenant", referral_id=found.referral.referral_id)
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await env.stub.ReviewReferral(
            pb.ReviewReferralRequest(
                tenant_id="other-tenant",
                referral_id=found.referral.referral_id,
                approve=True,
                reviewer="ops",
            )
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
