"""Identity's customer.merged and customer.forgotten, from the real identity service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, select, text

from closedloop.events.v1 import conversion_events_pb2 as conv
from closedloop.events.v1 import referral_events_pb2 as ev
from closedloop.identity.v1 import identity_pb2
from closedloop.referral.v1 import referral_pb2 as pb
from closedloop_referral.clock import now
from closedloop_referral.models import CodeRow, KnownCustomerRow, ReferralRow, VisitRow
from closedloop_referral.programs.service import ProgramService
from loopkit.events import unpack
from loopkit_dev.testing import eventually, read_events, replay_event
from referral_helpers import APP, Env


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


async def test_a_forgotten_referrers_link_records_no_more_visits_and_unties_the_old_ones(
    env: Env,
) -> None:
    """Forgetting a referrer used to leave their code working: each later visit kept the
    visitor's openid under them and published `share_visited` crediting them (acquisition
    records it as a touch); the visits before kept their code, share and referrer id."""
    program = await env.program()
    referrer, _ = await env.customer("a")
    code = await env.code(referrer, program)
    shared = await env.stub.RecordShare(
        pb.RecordShareRequest(
            tenant_id=env.tenant,
            customer_id=referrer,
            code=code,
            content_id="article-9",
            target=ev.SHARE_TARGET_CHAT,
        )
    )
    assert (await env.visit(code, openid="o-before", appid=APP, s=shared.share_id)).is_redirect
    newcomer, _ = await env.customer("b")
    await env.lead(newcomer, code=code)
    found = await env.wait_referral(newcomer)
    await env.wait_events("share_visited")

    await env.identity_stub.ForgetCustomer(
        identity_pb2.ForgetCustomerRequest(
            tenant_id=env.tenant, customer_id=referrer, actor="dpo", reason="erasure request"
        )
    )

    stats_request = pb.GetProgramStatsRequest(tenant_id=env.tenant, program_id=program.program_id)

    async def handled() -> bool:
        return (await env.stub.GetProgramStats(stats_request)).codes == 0

    await eventually(handled)
    after = await env.visit(code, openid="o-after", appid=APP, s=shared.share_id)
    assert after.status_code == 404
    assert len(await env.events("share_visited")) == 1
    async with env.referral.runtime.sessions() as session:
        visits = (
            await session.execute(
                select(
                    VisitRow.referrer_id,
                    VisitRow.code,
                    VisitRow.share_id,
                    VisitRow.visitor_openid,
                    VisitRow.program_id,
                ).where(VisitRow.tenant_id == env.tenant)
            )
        ).all()
    assert [tuple(v) for v in visits] == [("", "", "", "", program.program_id)]
    stats = await env.stub.GetProgramStats(stats_request)
    assert (stats.visits, stats.codes, stats.shares) == (1, 0, 0)
    # The referral stays, under the pseudonymous id, as the account of its rewards.
    kept = await env.get_referral(newcomer)
    assert kept.referral.referral_id == found.referral.referral_id
    assert kept.referral.referrer_customer_id == referrer


async def test_unmerge_gives_the_referrer_back_their_code_and_referrals(env: Env) -> None:
    program = await env.program()
    keeper, _ = await env.customer("a")
    sharer, _ = await env.customer("b")
    keeper_code = await env.code(keeper, program)
    sharer_code = await env.code(sharer, program)
    before, _ = await env.customer("n1")
    await env.lead(before, code=sharer_code)
    await env.wait_referral(before)

    survivor = await merge(env, keeper, sharer)
    assert survivor == keeper

    async def referrer_of(newcomer: str) -> str:
        return (await env.get_referral(newcomer)).referral.referrer_customer_id

    async def moved() -> bool:
        return await referrer_of(before) == keeper

    await eventually(moved)
    # After the merge the survivor refers someone with its own code: that stays the survivor's.
    after, _ = await env.customer("n2")
    await env.lead(after, code=keeper_code)
    await env.wait_referral(after)

    await env.identity_stub.UnmergeCustomer(
        identity_pb2.UnmergeCustomerRequest(
            tenant_id=env.tenant, customer_id=sharer, actor="test", reason="two people"
        )
    )

    async def given_back() -> bool:
        return await referrer_of(before) == sharer

    await eventually(given_back)

    async def state() -> tuple[str, str, str, str]:
        return (
            await referrer_of(before),
            await referrer_of(after),
            await env.code(sharer, program),
            await env.code(keeper, program),
        )

    assert await state() == (sharer, keeper, sharer_code, keeper_code)

    # The same customer.unmerged delivered again changes nothing.
    [unmerged] = [
        e
        for e in await read_events(env.nc, "IDENTITY", tenant_id=env.tenant)
        if e.type == "customer.unmerged"
    ]
    await replay_event(env.nc, unmerged, durable="referral-identity")
    assert await state() == (sharer, keeper, sharer_code, keeper_code)


async def test_unmerge_of_two_referred_newcomers_gives_each_their_referral(env: Env) -> None:
    program = await env.program()
    _, first, first_ref = await env.referred(program, name="u1")
    _, second, second_ref = await env.referred(program, name="u2")
    # The second is older in identity's eyes only if created first: merge into `first`.
    survivor = await merge(env, first, second)

    async def one_left() -> bool:
        return (await env.get_referral(survivor)).referral.referral_id in (
            first_ref.referral.referral_id,
            second_ref.referral.referral_id,
        )

    await eventually(one_left)
    restored = second if survivor == first else first
    await env.identity_stub.UnmergeCustomer(
        identity_pb2.UnmergeCustomerRequest(
            tenant_id=env.tenant, customer_id=restored, actor="test", reason="two people"
        )
    )
    want = {first: first_ref.referral.referral_id, second: second_ref.referral.referral_id}

    async def each_their_own() -> bool:
        for newcomer, referral_id in want.items():
            try:
                got = await env.get_referral(newcomer)
            except Exception:
                return False
            if got.referral.referral_id != referral_id:
                return False
        return True

    await eventually(each_their_own)


async def test_a_forgotten_referrers_newcomers_leave_the_viral_coefficient_as_it_was(
    env: Env,
) -> None:
    """Two referrers, one approved newcomer each: 1.0. Forgetting one deletes their code, but
    their referral stays (the account of its rewards): the coefficient counts the referrers
    behind the referrals too, so it stays 1.0 (over the code holders alone it became 2.0)."""
    program = await env.program()
    first, _, _ = await env.referred(program, name="f1")
    await env.referred(program, name="f2")
    request = pb.GetProgramStatsRequest(tenant_id=env.tenant, program_id=program.program_id)
    before = await env.stub.GetProgramStats(request)
    assert (before.codes, before.referrals, before.viral_coefficient) == (2, 2, 1.0)

    await env.identity_stub.ForgetCustomer(
        identity_pb2.ForgetCustomerRequest(
            tenant_id=env.tenant, customer_id=first, actor="dpo", reason="erasure request"
        )
    )

    async def handled() -> bool:
        return (await env.stub.GetProgramStats(request)).codes == 1

    await eventually(handled)
    after = await env.stub.GetProgramStats(request)
    assert (after.referrals, after.viral_coefficient) == (2, 1.0)


# A statement of this database waiting for a lock another transaction holds (a row lock here).
WAITING_FOR_A_LOCK = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


async def _visit_open_during(
    env: Env, code: str, event_type: str, act: Callable[[], Awaitable[object]]
) -> None:
    """A visit of `code` whose transaction stays open while identity does `act` and referral's
    identity consumer handles its `event_type`: until it is handled, or it waits for the visit."""
    runtime = env.referral.runtime
    programs: ProgramService = runtime.parts["programs"]
    js = env.nc.jetstream()
    async with runtime.sessions() as session, session.begin():
        await programs.record_visit(
            session, code, openid="o-racing", appid=APP, device_id="", share_id="", at=now()
        )
        await act()

        async def on_stream() -> bool:
            events = await read_events(env.nc, "IDENTITY", tenant_id=env.tenant)
            return any(e.type == event_type for e in events)

        await eventually(on_stream)
        last = (await js.stream_info("IDENTITY")).state.last_seq

        async def done_or_waiting() -> bool:
            info = await js.consumer_info("IDENTITY", "referral-identity")
            if info.ack_floor is not None and info.ack_floor.stream_seq >= last:
                return True  # handled while this visit is still open
            async with runtime.sessions() as probe:
                return bool((await probe.execute(WAITING_FOR_A_LOCK)).scalar_one())

        await eventually(done_or_waiting)


async def _visits(env: Env) -> list[tuple[str, str, str]]:
    async with env.referral.runtime.sessions() as session:
        rows = await session.execute(
            select(VisitRow.referrer_id, VisitRow.code, VisitRow.visitor_openid)
            .where(VisitRow.tenant_id == env.tenant)
            .order_by(VisitRow.id)
        )
        return [(r, c, o) for r, c, o in rows.all()]


# SQLite has one writer at a time (BEGIN IMMEDIATE): the merge waits for the visit anyway.
@pytest.mark.parametrize("services", ["postgres"], indirect=True)
async def test_a_visit_in_flight_during_its_referrers_merge_is_moved_by_the_merge(
    env: Env,
) -> None:
    """The link of M is opened as identity merges M into S: the visit read M's code before the
    merge reached referral and commits after. The merge waits for it (the visit holds its code
    row), so the visit names S, not the merged-away M."""
    program = await env.program()
    survivor, _ = await env.customer("s")
    merged_away, _ = await env.customer("m")
    code = await env.code(merged_away, program)

    async def merge_them() -> None:
        assert await merge(env, survivor, merged_away) == survivor

    await _visit_open_during(env, code, "customer.merged", merge_them)

    async def moved() -> bool:
        return await _visits(env) == [(survivor, code, "o-racing")]

    await eventually(moved)


@pytest.mark.parametrize("services", ["postgres"], indirect=True)
async def test_a_visit_in_flight_during_its_referrers_forget_is_untied_by_the_forget(
    env: Env,
) -> None:
    """The link of R is opened as R is forgotten: the forget waits for the visit (which holds
    R's code row), so the visit is untied from R and its openid erased like the ones before."""
    program = await env.program()
    referrer, _ = await env.customer("r")
    code = await env.code(referrer, program)

    async def forget() -> None:
        await env.identity_stub.ForgetCustomer(
            identity_pb2.ForgetCustomerRequest(
                tenant_id=env.tenant, customer_id=referrer, actor="dpo", reason="erasure request"
            )
        )

    await _visit_open_during(env, code, "customer.forgotten", forget)

    async def untied() -> bool:
        return await _visits(env) == [("", "", "")]

    await eventually(untied)


async def test_a_lead_naming_a_newcomer_merged_away_before_it_arrived_refers_the_survivor(
    env: Env,
) -> None:
    """The newcomer N's lead.captured reaches referral after identity merged N into S (and
    referral applied that merge): the referral is made for S, the live customer, so S's first
    paid order converts it (made for N, nobody's order would ever reach it)."""
    program = await env.program()
    referrer, _ = await env.customer("r")
    code = await env.code(referrer, program)
    survivor, _ = await env.customer("s")
    newcomer, _ = await env.customer("n")
    # A code of N's: once S holds it, referral has applied the merge.
    marker = await env.code(newcomer, await env.program(name="marker of the merge"))
    assert await merge(env, survivor, newcomer) == survivor

    async def applied() -> bool:
        async with env.referral.runtime.sessions() as session:
            row = await session.get(CodeRow, marker)
            return row is not None and row.customer_id == survivor

    await eventually(applied)
    await env.lead(newcomer, code=code)
    found = await env.wait_referral(survivor)
    assert found.referral.referrer_customer_id == referrer
    await env.paid(survivor)

    async def converted() -> bool:
        return (await env.get_referral(survivor)).referral.converted_at.seconds > 0

    await eventually(converted)


async def _referred_then_merged(env: Env) -> tuple[str, str, str]:
    """(referrer, survivor S, newcomer N): N was referred, then merged into S, and referral has
    applied the merge (S holds N's referral)."""
    program = await env.program()
    survivor, _ = await env.customer("s")
    referrer, newcomer, _ = await env.referred(program, name="n")
    assert await merge(env, survivor, newcomer) == survivor
    await env.wait_referral(survivor)
    return referrer, survivor, newcomer


async def test_an_order_paid_naming_a_newcomer_merged_away_converts_the_survivors_referral(
    env: Env,
) -> None:
    """conversion's order.paid for N reaches referral after N was merged into S: it converts
    the referral S holds now (read for N, it found no referral and converted nothing)."""
    _, survivor, newcomer = await _referred_then_merged(env)
    await env.paid(newcomer, order_id="ord-late")

    async def converted() -> bool:
        return (await env.get_referral(survivor)).referral.converted_at.seconds > 0

    await eventually(converted)
    [event] = await env.wait_events("referral.converted")
    assert (event.customer_id, unpack(event, ev.ReferralConverted).order_id) == (
        survivor,
        "ord-late",
    )


async def test_a_rep_deleted_by_a_newcomer_merged_away_revokes_the_survivors_rewards(
    env: Env,
) -> None:
    """ownership.ended (the customer deleted the rep) naming N after N was merged into S revokes
    the rewards of S's referral within the hold, as it would have before the merge."""
    _, survivor, newcomer = await _referred_then_merged(env)
    found = await env.get_referral(survivor)
    await env.paid(survivor)
    await env.wait_rewards(2, referral_id=found.referral.referral_id)
    await env.publish(
        "conversion",
        "ownership.ended",
        newcomer,
        conv.OwnershipEnded(rep_id="rep-1", reason=conv.OWNERSHIP_END_REASON_CUSTOMER_DELETED_REP),
    )
    revoked = await env.wait_events("reward.revoked", 2)
    assert {unpack(e, ev.RewardRevoked).reason for e in revoked} == {"customer_deleted_rep"}


async def test_an_unmerged_newcomers_late_order_converts_their_own_referral_again(
    env: Env,
) -> None:
    """After the unmerge gives N's referral back, an order naming N counts for N, not for S."""
    _, survivor, newcomer = await _referred_then_merged(env)
    await env.identity_stub.UnmergeCustomer(
        identity_pb2.UnmergeCustomerRequest(
            tenant_id=env.tenant, customer_id=newcomer, actor="test", reason="two people"
        )
    )
    await env.wait_referral(newcomer)
    await env.paid(newcomer, order_id="ord-own")

    async def converted() -> bool:
        return (await env.get_referral(newcomer)).referral.converted_at.seconds > 0

    await eventually(converted)
    [event] = await env.wait_events("referral.converted")
    assert event.customer_id == newcomer != survivor


async def test_late_events_naming_a_forgotten_customer_write_nothing_about_them(
    env: Env,
) -> None:
    """A lead and an order naming F reach referral after F was forgotten: referral keeps no row
    naming F (they used to start a known_customers row for F again)."""
    program = await env.program()
    referrer, _ = await env.customer("r")
    code = await env.code(referrer, program)
    forgotten, _ = await env.customer("f")
    marker = await env.code(forgotten, await env.program(name="marker of the forget"))
    await env.identity_stub.ForgetCustomer(
        identity_pb2.ForgetCustomerRequest(
            tenant_id=env.tenant, customer_id=forgotten, actor="dpo", reason="erasure request"
        )
    )

    async def applied() -> bool:
        async with env.referral.runtime.sessions() as session:
            return await session.get(CodeRow, marker) is None

    await eventually(applied)
    await env.lead(forgotten, code=code)
    await env.paid(forgotten)
    await env.settled()
    async with env.referral.runtime.sessions() as session:
        known = await session.scalar(
            select(func.count())
            .select_from(KnownCustomerRow)
            .where(KnownCustomerRow.customer_id == forgotten)
        )
        referred = await session.scalar(
            select(func.count())
            .select_from(ReferralRow)
            .where(ReferralRow.newcomer_id == forgotten)
        )
    assert (known, referred) == (0, 0)
