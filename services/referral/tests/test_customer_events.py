"""Identity's customer.merged and customer.forgotten, from the real identity service."""

from __future__ import annotations

from closedloop.events.v1 import referral_events_pb2 as ev
from closedloop.identity.v1 import identity_pb2
from closedloop.referral.v1 import referral_pb2 as pb
from loopkit.events import unpack
from loopkit_dev.testing import eventually
from referral_helpers import Env


async def merge(env: Env, *ids: str) -> str:
    answer = await env.identity_stub.MergeCustomers(
        identity_pb2.MergeCustomersRequest(
            tenant_id=env.tenant, customer_ids=list(ids), actor="test", reason="same person"
        )
    )
    return answer.survivor.customer_id


async def test_merging_referrer_and_newcomer_voids_the_self_referral(env: Env) -> None:
    program = await env.program()
    referrer, newcomer, found = await env.referred(program)
    await env.paid(newcomer)
    await env.wait_rewards(2, referral_id=found.referral.referral_id)

    survivor = await merge(env, referrer, newcomer)

    async def voided() -> bool:
        got = await env.stub.GetReferral(
            pb.GetReferralRequest(tenant_id=env.tenant, referral_id=found.referral.referral_id)
        )
        return got.referral.status == pb.REFERRAL_STATUS_VOIDED

    await eventually(voided)
    got = await env.stub.GetReferral(
        pb.GetReferralRequest(tenant_id=env.tenant, referral_id=found.referral.referral_id)
    )
    assert got.referral.flag_reason == "self_referral"
    assert got.referral.referrer_customer_id == got.referral.newcomer_customer_id == survivor
    assert {r.status for r in got.rewards} == {pb.REWARD_STATUS_VOIDED}
    revoked = await env.wait_events("reward.revoked", 2)
    assert {unpack(e, ev.RewardRevoked).reason for e in revoked} == {"self_referral"}
    assert await env.stub.ReleaseDueRewards(
        pb.ReleaseDueRewardsRequest(tenant_id=env.tenant)
    ) == pb.ReleaseDueRewardsResponse(granted=0)


async def test_a_self_referral_revealed_after_the_grant_claws_the_rewards_back(env: Env) -> None:
    program = await env.program(hold_seconds=0)  # granted at once: the merge comes after
    referrer, newcomer, found = await env.referred(program)
    referral_id = found.referral.referral_id
    await env.paid(newcomer)
    await env.wait_events("reward.granted", 2)

    survivor = await merge(env, referrer, newcomer)

    revoked = [
        (e.customer_id, unpack(e, ev.RewardRevoked))
        for e in await env.wait_events("reward.revoked", 2)
    ]
    assert {(who, r.points, r.was_granted, r.reason) for who, r in revoked} == {
        (survivor, 500, True, "self_referral"),
        (survivor, 100, True, "self_referral"),
    }
    got = await env.stub.GetReferral(
        pb.GetReferralRequest(tenant_id=env.tenant, referral_id=referral_id)
    )
    assert {(r.status, r.HasField("granted_at")) for r in got.rewards} == {
        (pb.REWARD_STATUS_VOIDED, True)
    }
    steps = [(e.from_status, e.to_status, e.reason) for e in got.ledger if e.reward_id]
    assert steps.count(("granted", "voided", "self_referral")) == 2
    assert steps.count(("pending", "approved", "hold ended")) == 2

    # Redelivered or repeated, the merge claws back nothing more.
    await merge(env, survivor, (await env.customer("other"))[0])
    await env.settled()
    assert len(await env.events("reward.revoked")) == 2


async def test_merging_two_referred_newcomers_keeps_one_referral_and_one_reward(env: Env) -> None:
    program = await env.program(hold_seconds=0)
    first_referrer, first, first_ref = await env.referred(program, name="b1")
    _, second, second_ref = await env.referred(program, name="b2")

    survivor = await merge(env, first, second)

    async def one_left() -> bool:
        got = await env.get_referral(survivor)
        return (
            got.referral.referral_id == first_ref.referral.referral_id
            and (
                await env.stub.GetReferral(
                    pb.GetReferralRequest(
                        tenant_id=env.tenant, referral_id=second_ref.referral.referral_id
                    )
                )
            ).referral.status
            == pb.REFERRAL_STATUS_VOIDED
        )

    await eventually(one_left)
    await env.paid(survivor)
    await env.paid(survivor)
    await env.settled()
    granted = [
        unpack(e, ev.RewardGranted)
        for e in await env.events("reward.granted")
        if unpack(e, ev.RewardGranted).referral_id
        in (first_ref.referral.referral_id, second_ref.referral.referral_id)
    ]
    assert sorted(g.level for g in granted) == [0, 1]
    assert {g.referral_id for g in granted} == {first_ref.referral.referral_id}
    rewards = await env.rewards(beneficiary_customer_id=first_referrer)
    assert len(rewards) == 1


async def test_a_merged_referrer_keeps_their_code_under_the_survivor(env: Env) -> None:
    program = await env.program()
    referrer, _ = await env.customer("a")
    other, _ = await env.customer("a2")
    code = await env.code(referrer, program)
    survivor = await merge(env, other, referrer)
    newcomer, _ = await env.customer("b")

    async def moved() -> bool:
        again = await env.stub.CreateReferralCode(
            pb.CreateReferralCodeRequest(
                tenant_id=env.tenant, customer_id=survivor, program_id=program.program_id
            )
        )
        return again.code == code

    await eventually(moved)
    await env.lead(newcomer, code=code)
    found = await env.wait_referral(newcomer)
    assert found.referral.referrer_customer_id == survivor


async def test_when_both_merged_customers_had_codes_both_keep_working(env: Env) -> None:
    program = await env.program()
    one, _ = await env.customer("a1")
    two, _ = await env.customer("a2")
    code_one = await env.code(one, program)
    code_two = await env.code(two, program)
    survivor = await merge(env, one, two)
    await env.settled()

    newcomers = []
    for code in (code_one, code_two):
        newcomer, _ = await env.customer("b")
        await env.lead(newcomer, code=code)
        newcomers.append(newcomer)
    for newcomer in newcomers:
        found = await env.wait_referral(newcomer)
        assert found.referral.referrer_customer_id == survivor
    again = await env.code(survivor, program)
    assert again in (code_one, code_two)


async def test_a_forgotten_customers_shares_are_erased(env: Env) -> None:
    program = await env.program()
    sharer, _ = await env.customer("a")
    await env.stub.RecordShare(
        pb.RecordShareRequest(
            tenant_id=env.tenant,
            customer_id=sharer,
            program_id=program.program_id,
            content_id="article-9",
            target=ev.SHARE_TARGET_CHAT,
        )
    )
    request = pb.GetProgramStatsRequest(tenant_id=env.tenant, program_id=program.program_id)
    assert (await env.stub.GetProgramStats(request)).shares == 1

    await env.identity_stub.ForgetCustomer(
        identity_pb2.ForgetCustomerRequest(
            tenant_id=env.tenant, customer_id=sharer, actor="dpo", reason="erasure request"
        )
    )

    async def erased() -> bool:
        return (await env.stub.GetProgramStats(request)).shares == 0

    await eventually(erased)
