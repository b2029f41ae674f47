"""Per-rep daily caps: the channel's cap (carried by lead.captured) limits each rep's day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import grpc
from sqlalchemy import update

from closedloop.conversion.v1 import conversion_pb2 as pb
from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop_conversion.models import LeadAssignmentRow
from closedloop_conversion.sales.policy import day_start
from closedloop_conversion.sales.service import SalesService
from closedloop_conversion.transport.workers import DayStartDrain
from conversion_helpers import lead_envelope, make_rep, publish
from loopkit.events import unpack
from loopkit.uow import UnitOfWork
from loopkit_dev.testing import eventually


async def _lead_when(stub, tenant: str, lead_id: str, status: int) -> pb.Lead:
    async def check() -> pb.Lead | None:
        try:
            answer = await stub.GetLead(pb.GetLeadRequest(tenant_id=tenant, lead_id=lead_id))
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None  # not consumed yet
            raise
        return answer.lead if answer.lead.status == status else None

    await eventually(check)
    lead = await check()
    assert lead is not None
    return lead


async def _send(stub, nats_client, tenant: str, status: int, **fields) -> pb.Lead:
    envelope = lead_envelope(tenant, **fields)
    await publish(nats_client, envelope)
    return await _lead_when(stub, tenant, unpack(envelope, acq.LeadCaptured).lead_id, status)


async def test_a_rep_at_the_daily_cap_gets_no_further_lead_of_that_channel(
    stub, tenant, nats_client
):
    reps = [await make_rep(stub, tenant, name, capacity=50) for name in ("ann", "bob", "cy")]
    capped = {"channel_id": "ch-capped", "daily_cap_per_rep": 1}
    assigned = pb.LEAD_STATUS_ASSIGNED
    first = [await _send(stub, nats_client, tenant, assigned, **capped) for _ in reps]
    # One each: round-robin alone would have done the same, so the fourth is the test.
    assert sorted(lead.rep_id for lead in first) == sorted(r.rep_id for r in reps)

    # Everyone had their one lead of this channel today: the next one waits, with room to spare.
    waiting = await _send(stub, nats_client, tenant, pb.LEAD_STATUS_UNASSIGNED, **capped)
    assert waiting.rep_id == ""

    # The cap is the channel's: a lead of another channel is still given out.
    other = await _send(stub, nats_client, tenant, assigned, channel_id="ch-free")
    assert other.rep_id in {r.rep_id for r in reps}

    # A rep with none of the channel's leads today joins: the waiting lead goes to them.
    dee = await make_rep(stub, tenant, "dee", capacity=50)
    given = await _lead_when(stub, tenant, waiting.lead_id, assigned)
    assert given.rep_id == dee.rep_id


async def test_a_lead_skips_the_rep_at_cap_for_the_next_one(stub, tenant, nats_client):
    ann = await make_rep(stub, tenant, "ann", capacity=50)
    capped = {"channel_id": "ch-two", "daily_cap_per_rep": 2}
    assigned = pb.LEAD_STATUS_ASSIGNED
    for _ in range(2):
        lead = await _send(stub, nats_client, tenant, assigned, **capped)
        assert lead.rep_id == ann.rep_id
    bob = await make_rep(stub, tenant, "bob", capacity=50)
    # Ann has her two; Bob gets this one and the next, then everyone is at cap.
    for _ in range(2):
        lead = await _send(stub, nats_client, tenant, assigned, **capped)
        assert lead.rep_id == bob.rep_id
    late = await _send(stub, nats_client, tenant, pb.LEAD_STATUS_UNASSIGNED, **capped)
    # Closing a lead frees capacity, not the day's cap: the lead keeps waiting.
    await stub.CloseLead(
        pb.CloseLeadRequest(tenant_id=tenant, lead_id=lead.lead_id, outcome=pb.LEAD_STATUS_LOST)
    )
    still = await stub.GetLead(pb.GetLeadRequest(tenant_id=tenant, lead_id=late.lead_id))
    assert still.lead.status == pb.LEAD_STATUS_UNASSIGNED


async def test_a_new_day_gives_the_waiting_lead_out(conversion, stub, tenant, nats_client):
    ann = await make_rep(stub, tenant, "ann", capacity=50)
    capped = {"channel_id": "ch-day", "daily_cap_per_rep": 1}
    await _send(stub, nats_client, tenant, pb.LEAD_STATUS_ASSIGNED, **capped)
    waiting = await _send(stub, nats_client, tenant, pb.LEAD_STATUS_UNASSIGNED, **capped)
    uow = UnitOfWork(conversion.runtime.sessions)
    drain = DayStartDrain(uow, SalesService(conversion.runtime.outbox))
    # Still today: the worker's round at midnight would find Ann at her cap.
    assert await drain.drain_once() == 0

    # Midnight passes (yesterday's assignments moved back a day, as the clock would have).
    async with conversion.runtime.sessions.begin() as session:
        await session.execute(
            update(LeadAssignmentRow)
            .where(LeadAssignmentRow.tenant_id == tenant)
            .values(at=datetime.now(UTC) - timedelta(days=1))
        )
    assert await drain.drain_once() == 1
    given = await _lead_when(stub, tenant, waiting.lead_id, pb.LEAD_STATUS_ASSIGNED)
    assert given.rep_id == ann.rep_id


def test_the_day_a_cap_counts_starts_at_utc_midnight():
    shanghai = timezone(timedelta(hours=8))
    # 07:30 in Shanghai is still the previous UTC day.
    at = datetime(2026, 12, 1, 7, 30, tzinfo=shanghai)
    assert day_start(at) == datetime(2026, 11, 30, tzinfo=UTC)
    assert day_start(datetime(2026, 12, 1, 0, 0, tzinfo=UTC)) == datetime(2026, 12, 1, tzinfo=UTC)
