"""The ConversionService gRPC servicer. Each call is one unit of work around one domain call (the
Get and List calls, and GetRepReport, a reading one, `UnitOfWork.read`: on SQLite they never wait
for a writer)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import grpc

from closedloop.conversion.v1 import conversion_pb2 as pb
from closedloop.conversion.v1 import conversion_pb2_grpc
from closedloop_conversion.common import now
from closedloop_conversion.ownership.service import OwnershipService
from closedloop_conversion.ownership.transfers import TransferService
from closedloop_conversion.pipeline import reports
from closedloop_conversion.pipeline.followups import FollowUpService
from closedloop_conversion.pipeline.orders import OrderService
from closedloop_conversion.sales.inputs import RepChanges, RepInput
from closedloop_conversion.sales.service import SalesService
from closedloop_conversion.tasks.service import TaskService
from closedloop_conversion.transport import convert as cv
from closedloop_conversion.transport.tasks import TaskRpcs
from loopkit.errors import InvalidArgument
from loopkit.tenancy import require_tenant
from loopkit.uow import UnitOfWork

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ConversionService"].full_name
DEFAULT_REPORT_RANGE = timedelta(days=30)


class ConversionServicer(TaskRpcs, conversion_pb2_grpc.ConversionServiceServicer):
    def __init__(
        self,
        uow: UnitOfWork,
        *,
        sales: SalesService,
        ownership: OwnershipService,
        transfers: TransferService,
        follow_ups: FollowUpService,
        orders: OrderService,
        tasks: TaskService,
    ) -> None:
        self._uow = uow
        self._tasks = tasks
        self._sales = sales
        self._ownership = ownership
        self._transfers = transfers
        self._follow_ups = follow_ups
        self._orders = orders

    # --- reps and rules ----------------------------------------------------------------------

    async def CreateRep(
        self, request: pb.CreateRepRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateRepResponse:
        tenant = require_tenant(request.tenant_id)
        data = RepInput(
            wecom_user_id=request.wecom_user_id,
            name=request.name,
            team=request.team,
            capacity=request.capacity,
            working_hours=cv.hours_from(request.working_hours),
            regions=tuple(request.regions),
            tags=tuple(request.tags),
        )
        rep = await self._uow.run(lambda s: self._sales.create_rep(s, tenant, data))
        return pb.CreateRepResponse(rep=cv.rep_to_pb(rep))

    async def UpdateRep(
        self, request: pb.UpdateRepRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateRepResponse:
        tenant = require_tenant(request.tenant_id)
        status = cv.enum_from(cv.REP_STATUS_FROM, request.status, "status", allow_unset=True)
        changes = RepChanges(
            name=request.name if request.HasField("name") else None,
            team=request.team if request.HasField("team") else None,
            capacity=request.capacity if request.HasField("capacity") else None,
            working_hours=(
                cv.hours_from(request.working_hours) if request.HasField("working_hours") else None
            ),
            status=status,
            regions=tuple(request.regions) if request.replace_regions else None,
            tags=tuple(request.tags) if request.replace_tags else None,
        )
        rep = await self._uow.run(
            lambda s: self._sales.update_rep(s, tenant, request.rep_id, changes)
        )
        return pb.UpdateRepResponse(rep=cv.rep_to_pb(rep))

    async def ListReps(
        self, request: pb.ListRepsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListRepsResponse:
        tenant = require_tenant(request.tenant_id)
        status = cv.enum_from(cv.REP_STATUS_FROM, request.status, "status", allow_unset=True)
        reps = await self._uow.read(
            lambda s: self._sales.list_reps(s, tenant, team=request.team, status=status or "")
        )
        return pb.ListRepsResponse(reps=[cv.rep_to_pb(r) for r in reps])

    async def SetAssignmentRule(
        self, request: pb.SetAssignmentRuleRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetAssignmentRuleResponse:
        tenant = require_tenant(request.tenant_id)
        kind = cv.enum_from(cv.RULES, request.rule.kind, "rule.kind")
        row = await self._uow.run(
            lambda s: self._sales.set_rule(
                s, tenant, request.rule.campaign_id, kind, request.rule.team
            )
        )
        return pb.SetAssignmentRuleResponse(rule=cv.rule_to_pb(row))

    # --- leads -------------------------------------------------------------------------------

    async def AssignLead(
        self, request: pb.AssignLeadRequest, context: grpc.aio.ServicerContext
    ) -> pb.AssignLeadResponse:
        tenant = require_tenant(request.tenant_id)
        lead = await self._uow.run(
            lambda s: self._sales.assign_lead(
                s, tenant, request.lead_id, request.rep_id, request.actor
            )
        )
        return pb.AssignLeadResponse(lead=cv.lead_to_pb(lead))

    async def ReassignLead(
        self, request: pb.ReassignLeadRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReassignLeadResponse:
        tenant = require_tenant(request.tenant_id)
        lead = await self._uow.run(
            lambda s: self._sales.reassign_lead(
                s,
                tenant,
                request.lead_id,
                rep_id=request.rep_id,
                reason=request.reason,
                actor=request.actor,
            )
        )
        return pb.ReassignLeadResponse(lead=cv.lead_to_pb(lead))

    async def GetLead(
        self, request: pb.GetLeadRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetLeadResponse:
        tenant = require_tenant(request.tenant_id)
        lead = await self._uow.read(lambda s: self._sales.get_lead(s, tenant, request.lead_id))
        return pb.GetLeadResponse(lead=cv.lead_to_pb(lead))

    async def ListLeads(
        self, request: pb.ListLeadsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListLeadsResponse:
        tenant = require_tenant(request.tenant_id)
        status = cv.enum_from(cv.LEAD_STATUS_FROM, request.status, "status", allow_unset=True)
        leads = await self._uow.read(
            lambda s: self._sales.list_leads(
                s,
                tenant,
                rep_id=request.rep_id,
                status=status or "",
                customer_id=request.customer_id,
            )
        )
        return pb.ListLeadsResponse(leads=[cv.lead_to_pb(lead) for lead in leads])

    async def CloseLead(
        self, request: pb.CloseLeadRequest, context: grpc.aio.ServicerContext
    ) -> pb.CloseLeadResponse:
        tenant = require_tenant(request.tenant_id)
        outcome = cv.enum_from(cv.LEAD_STATUS_FROM, request.outcome, "outcome")
        lead = await self._uow.run(
            lambda s: self._sales.close_lead(s, tenant, request.lead_id, outcome)
        )
        return pb.CloseLeadResponse(lead=cv.lead_to_pb(lead))

    # --- ownership and transfers -------------------------------------------------------------

    async def SetContactWay(
        self, request: pb.SetContactWayRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetContactWayResponse:
        tenant = require_tenant(request.tenant_id)
        await self._uow.run(
            lambda s: self._ownership.set_contact_way(
                s, tenant, request.state, request.channel_id, request.welcome_text
            )
        )
        return pb.SetContactWayResponse()

    async def ListOwnerships(
        self, request: pb.ListOwnershipsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListOwnershipsResponse:
        tenant = require_tenant(request.tenant_id)
        rows = await self._uow.read(
            lambda s: self._ownership.list(
                s,
                tenant,
                rep_id=request.rep_id,
                customer_id=request.customer_id,
                include_ended=request.include_ended,
            )
        )
        return pb.ListOwnershipsResponse(ownerships=[cv.ownership_to_pb(o) for o in rows])

    async def TransferCustomers(
        self, request: pb.TransferCustomersRequest, context: grpc.aio.ServicerContext
    ) -> pb.TransferCustomersResponse:
        tenant = require_tenant(request.tenant_id)
        rule = cv.enum_from(cv.RULES, request.rule, "rule", allow_unset=True)
        if not request.from_rep_id:
            raise InvalidArgument("is required", field="from_rep_id")
        batch = await self._uow.run(
            lambda s: self._transfers.start(
                s,
                tenant,
                request.from_rep_id,
                to_rep_id=request.to_rep_id,
                rule=rule,
                customer_ids=list(request.customer_ids),
                actor=request.actor,
            )
        )
        return pb.TransferCustomersResponse(
            batch_id=batch.batch_id, transfers=[cv.transfer_to_pb(t) for t in batch.transfers]
        )

    async def ReportTransferResult(
        self, request: pb.ReportTransferResultRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReportTransferResultResponse:
        tenant = require_tenant(request.tenant_id)
        status = cv.enum_from(cv.TRANSFER_STATUS_FROM, request.status, "status")
        row = await self._uow.run(
            lambda s: self._transfers.report(s, tenant, request.transfer_id, status)
        )
        return pb.ReportTransferResultResponse(transfer=cv.transfer_to_pb(row))

    async def SweepTransfers(
        self, request: pb.SweepTransfersRequest, context: grpc.aio.ServicerContext
    ) -> pb.SweepTransfersResponse:
        tenant = require_tenant(request.tenant_id)
        as_of = (
            cv.time_from(request.as_of, present=request.HasField("as_of"), field="as_of") or now()
        )
        rows = await self._uow.run(lambda s: self._transfers.sweep(s, tenant, as_of))
        return pb.SweepTransfersResponse(completed=[cv.transfer_to_pb(t) for t in rows])

    async def ListTransfers(
        self, request: pb.ListTransfersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTransfersResponse:
        tenant = require_tenant(request.tenant_id)
        status = cv.enum_from(cv.TRANSFER_STATUS_FROM, request.status, "status", allow_unset=True)
        rows = await self._uow.read(
            lambda s: self._transfers.list(s, tenant, rep_id=request.rep_id, status=status or "")
        )
        return pb.ListTransfersResponse(transfers=[cv.transfer_to_pb(t) for t in rows])

    # --- follow-ups, opportunities, orders ---------------------------------------------------

    async def LogFollowUp(
        self, request: pb.LogFollowUpRequest, context: grpc.aio.ServicerContext
    ) -> pb.LogFollowUpResponse:
        tenant = require_tenant(request.tenant_id)
        kind = cv.enum_from(cv.KIND_FROM, request.kind, "kind")
        at = cv.time_from(request.at, present=request.HasField("at"), field="at")
        if at is not None and at > now() + timedelta(minutes=5):
            raise InvalidArgument("is in the future", field="at")
        row = await self._uow.run(
            lambda s: self._follow_ups.log(
                s,
                tenant,
                customer_id=request.customer_id,
                rep_id=request.rep_id,
                kind=kind,
                summary=request.summary,
                at=at,
                inbound=request.inbound,
            )
        )
        return pb.LogFollowUpResponse(follow_up=cv.follow_up_to_pb(row))

    async def SetPipelineStages(
        self, request: pb.SetPipelineStagesRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetPipelineStagesResponse:
        tenant = require_tenant(request.tenant_id)
        stages = await self._uow.run(
            lambda s: self._orders.set_stages(s, tenant, list(request.stages))
        )
        return pb.SetPipelineStagesResponse(stages=stages)

    async def CreateOpportunity(
        self, request: pb.CreateOpportunityRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateOpportunityResponse:
        tenant = require_tenant(request.tenant_id)
        expected = (
            cv.money_from(request.expected_amount) if request.HasField("expected_amount") else None
        )
        row = await self._uow.run(
            lambda s: self._orders.create_opportunity(
                s,
                tenant,
                customer_id=request.customer_id,
                rep_id=request.rep_id,
                lead_id=request.lead_id,
                title=request.title,
                expected=expected,
            )
        )
        return pb.CreateOpportunityResponse(opportunity=cv.opportunity_to_pb(row))

    async def MoveOpportunity(
        self, request: pb.MoveOpportunityRequest, context: grpc.aio.ServicerContext
    ) -> pb.MoveOpportunityResponse:
        tenant = require_tenant(request.tenant_id)
        row = await self._uow.run(
            lambda s: self._orders.move_opportunity(
                s, tenant, request.opportunity_id, request.stage
            )
        )
        return pb.MoveOpportunityResponse(opportunity=cv.opportunity_to_pb(row))

    async def RecordOrder(
        self, request: pb.RecordOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordOrderResponse:
        tenant = require_tenant(request.tenant_id)
        if not request.HasField("amount"):
            raise InvalidArgument("is required", field="amount")
        row = await self._uow.run(
            lambda s: self._orders.record_order(
                s,
                tenant,
                customer_id=request.customer_id,
                rep_id=request.rep_id,
                opportunity_id=request.opportunity_id,
                lead_id=request.lead_id,
                items=cv.items_from(request.items),
                amount=cv.money_from(request.amount),
                paid_at=cv.time_from(
                    request.paid_at, present=request.HasField("paid_at"), field="paid_at"
                ),
            )
        )
        return pb.RecordOrderResponse(order=cv.order_to_pb(row))

    async def MarkOrderPaid(
        self, request: pb.MarkOrderPaidRequest, context: grpc.aio.ServicerContext
    ) -> pb.MarkOrderPaidResponse:
        tenant = require_tenant(request.tenant_id)
        paid_at = cv.time_from(
            request.paid_at, present=request.HasField("paid_at"), field="paid_at"
        )
        row = await self._uow.run(
            lambda s: self._orders.mark_paid(s, tenant, request.order_id, paid_at)
        )
        return pb.MarkOrderPaidResponse(order=cv.order_to_pb(row))

    async def RefundOrder(
        self, request: pb.RefundOrderRequest, context: grpc.aio.ServicerContext
    ) -> pb.RefundOrderResponse:
        tenant = require_tenant(request.tenant_id)
        amount = cv.money_from(request.amount) if request.HasField("amount") else None
        row = await self._uow.run(
            lambda s: self._orders.refund(s, tenant, request.order_id, amount, request.reason)
        )
        return pb.RefundOrderResponse(order=cv.order_to_pb(row))

    async def GetRepReport(
        self, request: pb.GetRepReportRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetRepReportResponse:
        tenant = require_tenant(request.tenant_id)
        end = cv.time_from(request.to, present=request.HasField("to"), field="to") or now()
        start = cv.time_from(
            getattr(request, "from"), present=request.HasField("from"), field="from"
        )
        start = start or end - DEFAULT_REPORT_RANGE
        rows = await self._uow.read(
            lambda s: reports.rep_report(
                s, tenant, rep_id=request.rep_id, team=request.team, start=start, end=end
            )
        )
        return pb.GetRepReportResponse(reps=[cv.report_to_pb(r) for r in rows])


def register(servicer: ConversionServicer) -> Callable[[grpc.aio.Server], None]:
    def add(server: grpc.aio.Server) -> None:
        conversion_pb2_grpc.add_ConversionServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]

    return add
