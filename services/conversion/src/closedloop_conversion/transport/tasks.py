"""Rep tasks at the edges: retention's win_back.offered consumed into a task, and the
ListRepTasks / CompleteRepTask calls (a mixin of the servicer, kept apart so each module stays
small)."""

from __future__ import annotations

import grpc
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.conversion.v1 import conversion_pb2 as pb
from closedloop.events.v1 import retention_events_pb2 as ret
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop_conversion.common import now
from closedloop_conversion.tasks.service import RepTaskView, TaskService, WinBackOffer
from loopkit.consumer import Subscription
from loopkit.envelopes import occurred_at, payload
from loopkit.errors import InvalidArgument
from loopkit.tenancy import require_tenant
from loopkit.timestamps import from_ts, ts
from loopkit.uow import UnitOfWork

_STATUS_TO_PB = {"open": pb.REP_TASK_STATUS_OPEN, "done": pb.REP_TASK_STATUS_DONE}
_NOTICE_TO_PB = {
    "pending": pb.REP_NOTICE_STATUS_PENDING,
    "sent": pb.REP_NOTICE_STATUS_SENT,
    "failed": pb.REP_NOTICE_STATUS_FAILED,
    "not_notified": pb.REP_NOTICE_STATUS_NOT_NOTIFIED,
}
_STATUS_FROM_PB = {
    pb.REP_TASK_STATUS_UNSPECIFIED: "",
    pb.REP_TASK_STATUS_OPEN: "open",
    pb.REP_TASK_STATUS_DONE: "done",
}


def win_back_subscription(tasks: TaskService) -> Subscription:
    async def offered(session: AsyncSession, env: Envelope) -> None:
        event = payload(env, ret.WinBackOffered)
        if not event.win_back_id or len(event.win_back_id) > 64:
            raise InvalidArgument("win_back_id is required", field="win_back_id")
        if not env.customer_id:
            raise InvalidArgument("win_back.offered without a customer", field="customer_id")
        offer = WinBackOffer(
            win_back_id=event.win_back_id,
            customer_id=env.customer_id[:26],
            owner_rep_id=event.owner_rep_id[:64],
            value_minor=event.value_minor,
            valid_until=from_ts(event.valid_until, event.HasField("valid_until")),
            attempt=event.attempt,
        )
        await tasks.win_back_offered(session, env.tenant_id, offer, occurred_at(env, now))

    return Subscription.to("retention", "win-backs", {"win_back.offered": offered})


def task_to_pb(v: RepTaskView) -> pb.RepTask:
    return pb.RepTask(
        task_id=v.id,
        rep_id=v.rep_id,
        customer_id=v.customer_id,
        kind=v.kind,
        source_id=v.source_id,
        title=v.title,
        status=_STATUS_TO_PB.get(v.status, pb.REP_TASK_STATUS_UNSPECIFIED),
        created_at=ts(v.created_at),
        due_at=ts(v.due_at),
        completed_at=ts(v.completed_at),
        outcome_note=v.outcome_note,
        rep_notice=_NOTICE_TO_PB.get(v.rep_notice, pb.REP_NOTICE_STATUS_UNSPECIFIED),
        rep_notice_detail=v.rep_notice_detail,
    )


class TaskRpcs:
    _uow: UnitOfWork
    _tasks: TaskService

    async def ListRepTasks(
        self, request: pb.ListRepTasksRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListRepTasksResponse:
        tenant = require_tenant(request.tenant_id)
        status = _STATUS_FROM_PB.get(request.status)
        if status is None:
            raise InvalidArgument("unknown status", field="status")
        found = await self._uow.read(
            lambda s: self._tasks.listed(s, tenant, request.rep_id, status, request.limit)
        )
        return pb.ListRepTasksResponse(tasks=[task_to_pb(v) for v in found])

    async def CompleteRepTask(
        self, request: pb.CompleteRepTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.CompleteRepTaskResponse:
        tenant = require_tenant(request.tenant_id)
        done = await self._uow.run(
            lambda s: self._tasks.complete(s, tenant, request.task_id, request.outcome_note, now())
        )
        return pb.CompleteRepTaskResponse(task=task_to_pb(done))
