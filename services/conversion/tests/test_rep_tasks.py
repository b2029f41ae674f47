"""A win-back offer from retention becomes a task for the customer's owning rep, once; reps list
and complete their tasks, and the rep report counts them."""

from __future__ import annotations

import grpc
import pytest

from closedloop.conversion.v1 import conversion_pb2 as pb
from closedloop.events.v1 import identity_events_pb2 as idev
from conversion_helpers import make_rep, offered, publish
from loopkit.events import new_envelope
from loopkit_dev.testing import eventually


async def test_a_win_back_offer_becomes_one_task_for_the_owner_rep(
    stub, nats_client, tenant: str
) -> None:
    rep = await make_rep(stub, tenant, "alice")
    other = await make_rep(stub, tenant, "bob")
    env = offered(tenant, "cust-wb-1", rep.rep_id, win_back_id="wb-offer-1")
    await publish(nats_client, env)
    await publish(nats_client, env, dedupe=False)  # redelivered: still one task
    # Another offer for the same rep, and one naming nobody conversion knows: no task.
    await publish(nats_client, offered(tenant, "cust-wb-2", rep.rep_id))
    await publish(nats_client, offered(tenant, "cust-wb-3", "rep-unknown"))

    async def two_tasks() -> list[pb.RepTask]:
        res = await stub.ListRepTasks(pb.ListRepTasksRequest(tenant_id=tenant))
        return list(res.tasks) if len(res.tasks) == 2 else []

    await eventually(two_tasks)
    tasks = await two_tasks()
    first = next(t for t in tasks if t.customer_id == "cust-wb-1")
    assert first.rep_id == rep.rep_id and first.kind == "win_back"
    assert first.source_id == "wb-offer-1"
    assert first.status == pb.REP_TASK_STATUS_OPEN and "20.00" in first.title
    # The tenant's corp has no application (agent_secret): the task says the rep was not told.
    assert first.rep_notice == pb.REP_NOTICE_STATUS_NOT_NOTIFIED
    assert first.rep_notice_detail == "not notified (no app configured)"
    assert not (
        await stub.ListRepTasks(pb.ListRepTasksRequest(tenant_id=tenant, rep_id=other.rep_id))
    ).tasks

    report = await stub.GetRepReport(pb.GetRepReportRequest(tenant_id=tenant, rep_id=rep.rep_id))
    assert (report.reps[0].tasks_open, report.reps[0].tasks_completed) == (2, 0)

    done = await stub.CompleteRepTask(
        pb.CompleteRepTaskRequest(tenant_id=tenant, task_id=first.task_id, outcome_note="called")
    )
    assert done.task.status == pb.REP_TASK_STATUS_DONE and done.task.outcome_note == "called"
    again = await stub.CompleteRepTask(
        pb.CompleteRepTaskRequest(tenant_id=tenant, task_id=first.task_id, outcome_note="x")
    )
    assert again.task.outcome_note == "called"  # completing twice changes nothing
    still_open = await stub.ListRepTasks(
        pb.ListRepTasksRequest(tenant_id=tenant, rep_id=rep.rep_id, status=pb.REP_TASK_STATUS_OPEN)
    )
    assert [t.customer_id for t in still_open.tasks] == ["cust-wb-2"]
    report = await stub.GetRepReport(pb.GetRepReportRequest(tenant_id=tenant, rep_id=rep.rep_id))
    assert (report.reps[0].tasks_open, report.reps[0].tasks_completed) == (1, 1)

    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.CompleteRepTask(pb.CompleteRepTaskRequest(tenant_id=tenant, task_id="nope"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.ListRepTasks(pb.ListRepTasksRequest(tenant_id=tenant, limit=5000))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_an_erased_customer_leaves_no_open_task(stub, nats_client, tenant: str) -> None:
    rep = await make_rep(stub, tenant, "carol")
    await publish(nats_client, offered(tenant, "cust-wb-9", rep.rep_id))

    async def listed() -> list[pb.RepTask]:
        res = await stub.ListRepTasks(pb.ListRepTasksRequest(tenant_id=tenant, rep_id=rep.rep_id))
        return list(res.tasks)

    await eventually(listed)
    await publish(
        nats_client,
        new_envelope(
            producer="identity",
            event_type="customer.forgotten",
            tenant_id=tenant,
            customer_id="cust-wb-9",
            payload=idev.CustomerForgotten(customer_id="cust-wb-9"),
        ),
    )

    async def gone() -> bool:
        return not await listed()

    await eventually(gone)
