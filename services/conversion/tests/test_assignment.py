"""Lead assignment: lead.captured in, the campaign's rule applied, lead.assigned out."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from sqlalchemy import update

from closedloop.conversion.v1 import conversion_pb2 as pb
from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.events.v1 import conversion_events_pb2 as ev
from closedloop_conversion.models import RepRow
from conversion_helpers import events, lead_envelope, make_rep, publish
from loopkit.deadletters import DeadLetter, list_dead_letters
from loopkit.events import unpack
from loopkit_dev.testing import answer_of, eventually


@pytest.mark.parametrize("conversion", ["sqlite"], indirect=True)
async def test_the_read_calls_answer_beside_an_open_write_on_sqlite(conversion, stub, tenant):
    """Get and List calls and GetRepReport read in a deferred transaction (`UnitOfWork.read`):
    on SQLite they answer while another connection holds the write lock. They began IMMEDIATE,
    so each queued behind the writer (up to the 30 s busy timeout, then again on each retry)."""
    rep = await make_rep(stub, tenant, "reader")
    async with conversion.runtime.sessions() as writer, writer.begin():
        renamed = update(RepRow).where(RepRow.id == rep.rep_id)
        await writer.execute(renamed.values(name="renamed"))  # the write lock, held to the end
        reps = await answer_of(stub.ListReps(pb.ListRepsRequest(tenant_id=tenant)))
        assert [r.name for r in reps.reps if r.rep_id == rep.rep_id] == ["reader"]  # committed
        report = pb.GetRepReportRequest(tenant_id=tenant, rep_id=rep.rep_id)
        assert (await answer_of(stub.GetRepReport(report))).reps[0].leads_assigned == 0
        by_rep = {"tenant_id": tenant, "rep_id": rep.rep_id}
        assert not (await answer_of(stub.ListLeads(pb.ListLeadsRequest(**by_rep)))).leads
        owned = await answer_of(stub.ListOwnerships(pb.ListOwnershipsRequest(**by_rep)))
        assert not owned.ownerships
        moved = await answer_of(stub.ListTransfers(pb.ListTransfersRequest(**by_rep)))
        assert not moved.transfers
        assert not (await answer_of(stub.ListRepTasks(pb.ListRepTasksRequest(**by_rep)))).tasks


async def _lead(stub, tenant, lead_id) -> pb.Lead | None:
    try:
        answer = await stub.GetLead(pb.GetLeadRequest(tenant_id=tenant, lead_id=lead_id))
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise
    return answer.lead


async def _assigned(stub, tenant, lead_id) -> pb.Lead:
    async def check():
        lead = await _lead(stub, tenant, lead_id)
        return lead if lead is not None and lead.status == pb.LEAD_STATUS_ASSIGNED else None

    await eventually(check)
    lead = await check()
    assert lead is not None
    return lead


async def test_captured_lead_goes_to_the_least_loaded_active_rep(stub, tenant, nats_client):
    busy = await make_rep(stub, tenant, "busy", capacity=2)
    light = await make_rep(stub, tenant, "light", capacity=10)
    departed = await make_rep(stub, tenant, "gone", capacity=100)
    await stub.UpdateRep(
        pb.UpdateRepRequest(tenant_id=tenant, rep_id=departed.rep_id, status=pb.REP_STATUS_DEPARTED)
    )
    await stub.SetAssignmentRule(
        pb.SetAssignmentRuleRequest(
            tenant_id=tenant,
            rule=pb.AssignmentRule(campaign_id="camp-1", kind=pb.ASSIGNMENT_RULE_KIND_LEAST_LOADED),
        )
    )
    first = lead_envelope(tenant)
    await publish(nats_client, first)
    lead = await _assigned(stub, tenant, unpack(first, _captured()).lead_id)
    # Both empty: equal load 0, the earlier turn wins; then the other one is less loaded.
    second = lead_envelope(tenant)
    await publish(nats_client, second)
    lead2 = await _assigned(stub, tenant, unpack(second, _captured()).lead_id)
    assert {lead.rep_id, lead2.rep_id} == {busy.rep_id, light.rep_id}
    third = lead_envelope(tenant)
    await publish(nats_client, third)
    lead3 = await _assigned(stub, tenant, unpack(third, _captured()).lead_id)
    # busy is at 1/2, light at 1/10: light is less loaded.
    assert lead3.rep_id == light.rep_id
    assert lead3.rule == "least_loaded"

    async def assigned_events():
        return await events(nats_client, tenant, "lead.assigned")

    await eventually(lambda: _count(assigned_events, 3))
    payloads = [unpack(e, ev.LeadAssigned) for e in await assigned_events()]
    assert departed.rep_id not in {p.rep_id for p in payloads}
    assert {p.rule for p in payloads} == {"least_loaded"}
    assert all(p.campaign_id == "camp-1" for p in payloads)


def _captured():
    from closedloop.events.v1 import acquisition_events_pb2 as acq

    return acq.LeadCaptured


async def _has(fetch, item: str) -> bool:
    return item in await fetch()


async def _count(fetch, n: int) -> bool:
    return len(await fetch()) >= n


async def test_redelivered_lead_is_assigned_once(stub, tenant, nats_client):
    await make_rep(stub, tenant, "r1")
    await make_rep(stub, tenant, "r2")
    env = lead_envelope(tenant)
    # The same event three times, bypassing JetStream's de-duplication: the inbox must catch it.
    for _ in range(3):
        await publish(nats_client, env, dedupe=False)
    lead_id = unpack(env, _captured()).lead_id
    await _assigned(stub, tenant, lead_id)
    marker = lead_envelope(tenant)
    await publish(nats_client, marker)  # processed after the copies: they are all done then
    await _assigned(stub, tenant, unpack(marker, _captured()).lead_id)
    marker_id = unpack(marker, _captured()).lead_id

    async def assigned_ids():
        found = await events(nats_client, tenant, "lead.assigned")
        return [unpack(e, ev.LeadAssigned).lead_id for e in found]

    await eventually(lambda: _has(assigned_ids, marker_id))
    ids = await assigned_ids()
    assert ids.count(lead_id) == 1
    reps = await stub.ListReps(pb.ListRepsRequest(tenant_id=tenant))
    assert sum(r.open_leads for r in reps.reps) == 2


async def test_lead_waits_when_nobody_has_room_and_is_assigned_when_a_rep_joins(
    stub, tenant, nats_client
):
    full = await make_rep(stub, tenant, "full", capacity=1)
    first = lead_envelope(tenant)
    await publish(nats_client, first)
    await _assigned(stub, tenant, unpack(first, _captured()).lead_id)
    waiting = lead_envelope(tenant)
    await publish(nats_client, waiting)
    waiting_id = unpack(waiting, _captured()).lead_id

    async def stored():
        return await _lead(stub, tenant, waiting_id)

    await eventually(stored)
    lead = await stored()
    assert lead is not None and lead.status == pb.LEAD_STATUS_UNASSIGNED and not lead.rep_id
    newcomer = await make_rep(stub, tenant, "newcomer", capacity=5)
    lead = await _lead(stub, tenant, waiting_id)
    assert lead is not None and lead.rep_id == newcomer.rep_id
    # Capacity freed by closing a lead also serves the queue.
    third = lead_envelope(tenant, owner_team="other-team-without-reps")
    await stub.UpdateRep(pb.UpdateRepRequest(tenant_id=tenant, rep_id=newcomer.rep_id, capacity=1))
    await publish(nats_client, third)
    third_id = unpack(third, _captured()).lead_id
    await eventually(lambda: _stored(stub, tenant, third_id))
    assert (await _lead(stub, tenant, third_id)).status == pb.LEAD_STATUS_UNASSIGNED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.AssignLead(pb.AssignLeadRequest(tenant_id=tenant, lead_id=third_id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # nobody has room: it waits
    first_lead = await _lead(stub, tenant, unpack(first, _captured()).lead_id)
    await stub.CloseLead(
        pb.CloseLeadRequest(
            tenant_id=tenant, lead_id=first_lead.lead_id, outcome=pb.LEAD_STATUS_LOST
        )
    )
    lead = await _lead(stub, tenant, third_id)
    assert lead.status == pb.LEAD_STATUS_ASSIGNED and lead.rep_id == full.rep_id


async def _stored(stub, tenant, lead_id) -> bool:
    return await _lead(stub, tenant, lead_id) is not None


@pytest.mark.parametrize("conversion", ["sqlite"], indirect=True)
async def test_rules_by_region_and_tag(stub, tenant, nats_client, identity_stub):
    north = await make_rep(stub, tenant, "north", regions=["beijing"])
    south = await make_rep(stub, tenant, "south", regions=["guangzhou"], tags=["vip"])
    for campaign, kind in (
        ("by-region", pb.ASSIGNMENT_RULE_KIND_REGION),
        ("by-tag", pb.ASSIGNMENT_RULE_KIND_TAG),
    ):
        await stub.SetAssignmentRule(
            pb.SetAssignmentRuleRequest(
                tenant_id=tenant, rule=pb.AssignmentRule(campaign_id=campaign, kind=kind)
            )
        )
    env = lead_envelope(tenant, campaign_id="by-region", region="Beijing")
    await publish(nats_client, env)
    lead = await _assigned(stub, tenant, unpack(env, _captured()).lead_id)
    assert (lead.rep_id, lead.rule) == (north.rep_id, "region")
    env = lead_envelope(tenant, campaign_id="by-tag", tags=["VIP", "new"])
    await publish(nats_client, env)
    lead = await _assigned(stub, tenant, unpack(env, _captured()).lead_id)
    assert (lead.rep_id, lead.rule) == (south.rep_id, "tag")


async def test_assign_by_hand_and_bad_input(stub, tenant, nats_client):
    await make_rep(stub, tenant, "only", capacity=1)
    gone = await make_rep(stub, tenant, "gone", capacity=5)
    spare = await make_rep(stub, tenant, "spare", capacity=0)
    await stub.UpdateRep(
        pb.UpdateRepRequest(tenant_id=tenant, rep_id=gone.rep_id, status=pb.REP_STATUS_DEPARTED)
    )
    env = lead_envelope(tenant)
    await publish(nats_client, env)
    lead = await _assigned(stub, tenant, unpack(env, _captured()).lead_id)

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ReassignLead(
            pb.ReassignLeadRequest(tenant_id=tenant, lead_id=lead.lead_id, rep_id=gone.rep_id)
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ReassignLead(
            pb.ReassignLeadRequest(tenant_id=tenant, lead_id=lead.lead_id, rep_id=spare.rep_id)
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # at capacity
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.AssignLead(
            pb.AssignLeadRequest(tenant_id=tenant, lead_id=lead.lead_id, rep_id=gone.rep_id)
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetLead(pb.GetLeadRequest(tenant_id=tenant, lead_id="nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await make_rep(stub, tenant, "bad", capacity=-1)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await make_rep(stub, tenant, "only")
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await make_rep(
            stub,
            tenant,
            "hours",
            working_hours=pb.WorkingHours(weekdays=[1], start="18:00", end="09:00"),
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(err.value.trailing_metadata()).get("closedloop-field") == "working_hours.end"

    await stub.UpdateRep(pb.UpdateRepRequest(tenant_id=tenant, rep_id=spare.rep_id, capacity=3))
    moved = await stub.ReassignLead(
        pb.ReassignLeadRequest(
            tenant_id=tenant, lead_id=lead.lead_id, rep_id=spare.rep_id, reason="holiday"
        )
    )
    assert moved.lead.rep_id == spare.rep_id and moved.lead.rule == "manual"

    async def reassigned():
        found = await events(nats_client, tenant, "lead.assigned")
        return [p for p in (unpack(e, ev.LeadAssigned) for e in found) if p.previous_rep_id]

    await eventually(reassigned)
    [event] = await reassigned()
    assert (event.previous_rep_id, event.rep_id) == (lead.rep_id, spare.rep_id)


@pytest.mark.parametrize("conversion", ["postgres"], indirect=True)
async def test_round_robin_is_fair_under_concurrent_leads(
    stub, tenant, nats_client, conversion, tmp_path
):
    """Two replicas share the database and the durable consumer; turns still go evenly."""
    from closedloop_conversion.main import DEFINITION
    from loopkit_dev.testing import running_service

    settings = conversion.runtime.settings
    async with running_service(
        DEFINITION,
        database_url=settings.resolved_database_url(),
        nats_url=settings.nats_url,
        state_dir=tmp_path / "replica",
        identity_url=settings.identity_url,
        consumer_batch_size=5,
    ):
        reps = [await make_rep(stub, tenant, f"rr-{i}", capacity=100) for i in range(3)]
        envs = [lead_envelope(tenant) for _ in range(30)]
        await asyncio.gather(*(publish(nats_client, e) for e in envs))

        async def all_assigned():
            listed = await stub.ListLeads(
                pb.ListLeadsRequest(tenant_id=tenant, status=pb.LEAD_STATUS_ASSIGNED)
            )
            return len(listed.leads) == 30

        await eventually(all_assigned, timeout_s=20)
    listed = await stub.ListReps(pb.ListRepsRequest(tenant_id=tenant))
    assert sorted(r.open_leads for r in listed.reps) == [10, 10, 10]
    assert {r.rep_id for r in listed.reps} == {r.rep_id for r in reps}


async def test_lead_event_carrying_another_payload_is_dead_lettered_at_once(
    stub, tenant, nats_client
):
    """A lead.captured whose payload is another message can never succeed: it is dead-lettered
    on its first delivery, and the next, well-formed lead is still assigned."""
    rep = await make_rep(stub, tenant, "only", capacity=10)
    wrong = lead_envelope(tenant)
    wrong.payload.Pack(ev.LeadAssigned(lead_id="not-a-capture"))
    await publish(nats_client, wrong)

    async def letter() -> DeadLetter | None:
        found = await list_dead_letters(nats_client.jetstream())
        return next((d for d in found if d.event_id == wrong.id), None)

    await eventually(letter)
    dead = await letter()
    assert dead is not None
    assert dead.delivered == "1"  # permanent: never retried
    assert dead.error.startswith("WrongPayload")
    good = lead_envelope(tenant)
    await publish(nats_client, good)
    lead_id = unpack(good, acq.LeadCaptured).lead_id
    assert (await _assigned(stub, tenant, lead_id)).rep_id == rep.rep_id
