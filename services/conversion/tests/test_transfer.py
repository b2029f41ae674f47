"""Customer transfer when a rep leaves or moves, with WeCom's pending / refused / limit rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from closedloop.conversion.v1 import conversion_pb2 as pb
from closedloop.conversion.v1 import conversion_pb2_grpc
from closedloop.events.v1 import conversion_events_pb2 as ev
from closedloop_conversion.main import DEFINITION
from conversion_helpers import (
    accounts,
    contact_change,
    events,
    lead_envelope,
    make_rep,
    post_callback,
    publish,
)
from loopkit.events import unpack
from loopkit_dev.testing import eventually, running_service


async def befriend(conversion, stub, tenant, user: str, ext: str) -> pb.Ownership:
    answer = await post_callback(
        conversion.http_url, contact_change("add_external_contact", user, ext)
    )
    assert answer.status_code == 200
    owned = await stub.ListOwnerships(pb.ListOwnershipsRequest(tenant_id=tenant))
    return next(o for o in owned.ownerships if o.external_userid == ext and o.status == 1)


async def owners(stub, tenant) -> dict[str, str]:
    owned = await stub.ListOwnerships(pb.ListOwnershipsRequest(tenant_id=tenant))
    return {o.customer_id: o.rep_id for o in owned.ownerships}


def _later(hours: float) -> Timestamp:
    at = Timestamp()
    at.FromDatetime(datetime.now(UTC) + timedelta(hours=hours))
    return at


async def test_departed_reps_customers_all_get_a_new_owner(stub, conversion, tenant, nats_client):
    leaving = await make_rep(stub, tenant, "leaving")
    b = await make_rep(stub, tenant, "b")
    c = await make_rep(stub, tenant, "c")
    customers = [
        (await befriend(conversion, stub, tenant, "leaving", f"wm-{i}")).customer_id
        for i in range(3)
    ]
    await stub.SetAssignmentRule(
        pb.SetAssignmentRuleRequest(
            tenant_id=tenant,
            rule=pb.AssignmentRule(campaign_id="camp-1", kind=pb.ASSIGNMENT_RULE_KIND_STICKY),
        )
    )
    env = lead_envelope(tenant, customers[0])
    await publish(nats_client, env)

    async def lead_with_owner():
        listed = await stub.ListLeads(pb.ListLeadsRequest(tenant_id=tenant, rep_id=leaving.rep_id))
        return listed.leads

    await eventually(lead_with_owner)
    [lead] = await lead_with_owner()
    assert lead.rule == "sticky"
    opp = await stub.CreateOpportunity(
        pb.CreateOpportunityRequest(
            tenant_id=tenant, customer_id=customers[0], lead_id=lead.lead_id
        )
    )
    assert opp.opportunity.rep_id == leaving.rep_id

    await stub.UpdateRep(
        pb.UpdateRepRequest(tenant_id=tenant, rep_id=leaving.rep_id, status=pb.REP_STATUS_DEPARTED)
    )
    started = await stub.TransferCustomers(
        pb.TransferCustomersRequest(
            tenant_id=tenant,
            from_rep_id=leaving.rep_id,
            rule=pb.ASSIGNMENT_RULE_KIND_ROUND_ROBIN,
            actor="hr:alice",
        )
    )
    assert len(started.transfers) == 3
    assert {t.status for t in started.transfers} == {pb.TRANSFER_STATUS_PENDING}
    assert {t.mode for t in started.transfers} == {"resigned"}
    assert {t.to_rep_id for t in started.transfers} == {b.rep_id, c.rep_id}
    # Pending: WeCom has not moved them yet, so the former owner still holds every one.
    assert set((await owners(stub, tenant)).values()) == {leaving.rep_id}
    # Asking again does not start a second transfer of the same customers.
    again = await stub.TransferCustomers(
        pb.TransferCustomersRequest(
            tenant_id=tenant, from_rep_id=leaving.rep_id, to_rep_id=b.rep_id
        )
    )
    assert {t.transfer_id for t in again.transfers} == {t.transfer_id for t in started.transfers}

    early = await stub.SweepTransfers(pb.SweepTransfersRequest(tenant_id=tenant))
    assert list(early.completed) == []
    swept = await stub.SweepTransfers(pb.SweepTransfersRequest(tenant_id=tenant, as_of=_later(25)))
    assert len(swept.completed) == 3
    now_owned = await owners(stub, tenant)
    assert set(now_owned) == set(customers)
    assert set(now_owned.values()) <= {b.rep_id, c.rep_id}
    new_owner = now_owned[customers[0]]
    moved = await stub.GetLead(pb.GetLeadRequest(tenant_id=tenant, lead_id=lead.lead_id))
    assert (moved.lead.rep_id, moved.lead.rule) == (new_owner, "transfer")
    [done] = [t for t in swept.completed if t.customer_id == customers[0]]
    assert (done.leads_moved, done.opportunities_moved, done.actor) == (1, 1, "hr:alice")

    async def transferred():
        return await events(nats_client, tenant, "ownership.transferred")

    await eventually(lambda: _at_least(transferred, 3))
    payloads = [unpack(e, ev.OwnershipTransferred) for e in await transferred()]
    assert {p.from_rep_id for p in payloads} == {leaving.rep_id}
    assert {p.mode for p in payloads} == {"resigned"}

    report = await stub.GetRepReport(pb.GetRepReportRequest(tenant_id=tenant))
    by_rep = {r.rep_id: r for r in report.reps}
    assert by_rep[leaving.rep_id].customers_owned == 0
    assert by_rep[b.rep_id].customers_owned + by_rep[c.rep_id].customers_owned == 3
    assert by_rep[new_owner].opportunities_by_stage == {"new": 1}


@pytest.mark.parametrize("conversion", ["sqlite"], indirect=True)
async def test_transfer_from_a_rep_without_customers_is_empty(stub, tenant):
    a = await make_rep(stub, tenant, "a")
    b = await make_rep(stub, tenant, "b")
    answer = await stub.TransferCustomers(
        pb.TransferCustomersRequest(tenant_id=tenant, from_rep_id=a.rep_id, to_rep_id=b.rep_id)
    )
    assert list(answer.transfers) == []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.TransferCustomers(
            pb.TransferCustomersRequest(tenant_id=tenant, from_rep_id="nobody", to_rep_id=b.rep_id)
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_on_job_transfer_limit_and_refusal(stub, conversion, tenant):
    a = await make_rep(stub, tenant, "a")
    b = await make_rep(stub, tenant, "b")
    x = (await befriend(conversion, stub, tenant, "a", "wm-x")).customer_id
    y = (await befriend(conversion, stub, tenant, "a", "wm-y")).customer_id

    async def move(src: pb.Rep, dst: pb.Rep, customer: str) -> pb.CustomerTransfer:
        started = await stub.TransferCustomers(
            pb.TransferCustomersRequest(
                tenant_id=tenant,
                from_rep_id=src.rep_id,
                to_rep_id=dst.rep_id,
                customer_ids=[customer],
            )
        )
        [t] = started.transfers
        return t

    first = await move(a, b, x)
    assert first.mode == "on_job"
    done = await stub.ReportTransferResult(
        pb.ReportTransferResultRequest(
            tenant_id=tenant, transfer_id=first.transfer_id, status=pb.TRANSFER_STATUS_COMPLETED
        )
    )
    assert done.transfer.status == pb.TRANSFER_STATUS_COMPLETED
    second = await move(b, a, x)
    await stub.ReportTransferResult(
        pb.ReportTransferResultRequest(
            tenant_id=tenant, transfer_id=second.transfer_id, status=pb.TRANSFER_STATUS_COMPLETED
        )
    )
    third = await move(a, b, x)
    assert third.status == pb.TRANSFER_STATUS_OVER_LIMIT
    assert (await owners(stub, tenant))[x] == a.rep_id  # never without an owner

    # The customer refuses: WeCom's transfer_fail callback; the former owner keeps them.
    pending = await move(a, b, y)
    answer = await post_callback(
        conversion.http_url,
        contact_change("transfer_fail", "b", "wm-y", fail_reason="customer_refused"),
    )
    assert answer.status_code == 200
    listed = await stub.ListTransfers(
        pb.ListTransfersRequest(tenant_id=tenant, status=pb.TRANSFER_STATUS_REFUSED)
    )
    assert [t.transfer_id for t in listed.transfers] == [pending.transfer_id]
    assert (await owners(stub, tenant))[y] == a.rep_id
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ReportTransferResult(
            pb.ReportTransferResultRequest(
                tenant_id=tenant,
                transfer_id=pending.transfer_id,
                status=pb.TRANSFER_STATUS_COMPLETED,
            )
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # Refused is not forgotten: the customer can be transferred again.
    retry = await move(a, b, y)
    assert retry.status == pb.TRANSFER_STATUS_PENDING


async def _at_least(fetch, n: int) -> bool:
    return len(await fetch()) >= n


async def test_the_sweeper_records_wecoms_automatic_takeover(
    identity, nats_server, tenant, tmp_path
):
    """With nobody calling SweepTransfers, a transfer pending past the takeover delay completes."""
    async with running_service(
        DEFINITION,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/sweep.db",
        nats_url=nats_server.url,
        state_dir=tmp_path,
        identity_url=identity.grpc_target,
        accounts=accounts(tenant),
        transfer_auto_takeover_s=0.0,
        transfer_sweep_interval_s=0.1,
        shutdown_grace_s=0.5,
    ) as svc:
        stub = conversion_pb2_grpc.ConversionServiceStub(svc.channel)
        a = await make_rep(stub, tenant, "a")
        b = await make_rep(stub, tenant, "b")
        own = await befriend(svc, stub, tenant, "a", "wm-auto")
        await stub.TransferCustomers(
            pb.TransferCustomersRequest(tenant_id=tenant, from_rep_id=a.rep_id, to_rep_id=b.rep_id)
        )

        async def taken_over():
            return (await owners(stub, tenant)).get(own.customer_id) == b.rep_id

        await eventually(taken_over)
        listed = await stub.ListTransfers(pb.ListTransfersRequest(tenant_id=tenant))
        assert [t.status for t in listed.transfers] == [pb.TRANSFER_STATUS_COMPLETED]
