"""Protobuf <-> domain for the ConversionService."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from closedloop.common.v1 import common_pb2
from closedloop.conversion.v1 import conversion_pb2 as pb
from closedloop.events.v1 import conversion_events_pb2 as ev
from closedloop_conversion.common import utc
from closedloop_conversion.ownership.views import OwnershipView, TransferView
from closedloop_conversion.pipeline.followups import KIND_PB, Kind
from closedloop_conversion.pipeline.money import Item, Money, items_to_pb
from closedloop_conversion.pipeline.reports import RepFigures
from closedloop_conversion.pipeline.views import FollowUpView, OpportunityView, OrderView
from closedloop_conversion.sales.policy import Rule
from closedloop_conversion.sales.views import LeadView, RepView, RuleView
from loopkit.errors import InvalidArgument
from loopkit.timestamps import ts as ts  # shared; re-exported

REP_STATUS = {"active": pb.REP_STATUS_ACTIVE, "departed": pb.REP_STATUS_DEPARTED}
REP_STATUS_FROM = {v: k for k, v in REP_STATUS.items()}
RULES = {
    pb.ASSIGNMENT_RULE_KIND_ROUND_ROBIN: Rule.ROUND_ROBIN,
    pb.ASSIGNMENT_RULE_KIND_LEAST_LOADED: Rule.LEAST_LOADED,
    pb.ASSIGNMENT_RULE_KIND_REGION: Rule.REGION,
    pb.ASSIGNMENT_RULE_KIND_TAG: Rule.TAG,
    pb.ASSIGNMENT_RULE_KIND_STICKY: Rule.STICKY,
}
RULES_TO = {v: k for k, v in RULES.items()}
LEAD_STATUS = {
    "unassigned": pb.LEAD_STATUS_UNASSIGNED,
    "assigned": pb.LEAD_STATUS_ASSIGNED,
    "won": pb.LEAD_STATUS_WON,
    "lost": pb.LEAD_STATUS_LOST,
}
LEAD_STATUS_FROM = {v: k for k, v in LEAD_STATUS.items()}
OWNERSHIP_STATUS = {
    "active": pb.OWNERSHIP_STATUS_ACTIVE,
    "ended": pb.OWNERSHIP_STATUS_ENDED,
    "transferred": pb.OWNERSHIP_STATUS_TRANSFERRED,
}
END_REASON = {
    "rep_deleted_customer": ev.OWNERSHIP_END_REASON_REP_DELETED_CUSTOMER,
    "customer_deleted_rep": ev.OWNERSHIP_END_REASON_CUSTOMER_DELETED_REP,
}
TRANSFER_STATUS = {
    "pending": pb.TRANSFER_STATUS_PENDING,
    "completed": pb.TRANSFER_STATUS_COMPLETED,
    "refused": pb.TRANSFER_STATUS_REFUSED,
    "over_limit": pb.TRANSFER_STATUS_OVER_LIMIT,
    "failed": pb.TRANSFER_STATUS_FAILED,
}
TRANSFER_STATUS_FROM = {v: k for k, v in TRANSFER_STATUS.items()}
ORDER_STATUS = {
    "placed": pb.ORDER_STATUS_PLACED,
    "paid": pb.ORDER_STATUS_PAID,
    "partially_refunded": pb.ORDER_STATUS_PARTIALLY_REFUNDED,
    "refunded": pb.ORDER_STATUS_REFUNDED,
}
KIND_FROM = {v: k for k, v in KIND_PB.items()}


def time_from(value: Timestamp, *, present: bool, field: str = "time") -> datetime | None:
    if not present:
        return None
    try:
        return utc(value.ToDatetime())
    except (ValueError, OverflowError):
        raise InvalidArgument("timestamp out of range", field=field) from None


def enum_from(
    mapping: Mapping[Any, Any], value: int, field: str, *, allow_unset: bool = False
) -> Any:
    if value == 0 and allow_unset:
        return None
    if value not in mapping:
        raise InvalidArgument("unknown or unspecified value", field=field)
    return mapping[value]


def hours_from(h: pb.WorkingHours) -> dict[str, Any]:
    if not (h.weekdays or h.start or h.end or h.time_zone):
        return {}
    return {"weekdays": list(h.weekdays), "start": h.start, "end": h.end, "time_zone": h.time_zone}


def rep_to_pb(r: RepView) -> pb.Rep:
    hours = r.working_hours or {}
    return pb.Rep(
        rep_id=r.id,
        tenant_id=r.tenant_id,
        wecom_user_id=r.wecom_user_id,
        name=r.name,
        team=r.team,
        capacity=r.capacity,
        working_hours=pb.WorkingHours(
            weekdays=hours.get("weekdays", []),
            start=hours.get("start", ""),
            end=hours.get("end", ""),
            time_zone=hours.get("time_zone", ""),
        ),
        status=REP_STATUS.get(r.status, pb.REP_STATUS_UNSPECIFIED),
        regions=r.regions,
        tags=r.tags,
        open_leads=r.open_leads,
        created_at=ts(r.created_at),
    )


def rule_to_pb(r: RuleView) -> pb.AssignmentRule:
    return pb.AssignmentRule(campaign_id=r.campaign_id, kind=RULES_TO[Rule(r.kind)], team=r.team)


def lead_to_pb(lead: LeadView) -> pb.Lead:
    return pb.Lead(
        lead_id=lead.id,
        tenant_id=lead.tenant_id,
        customer_id=lead.customer_id,
        campaign_id=lead.campaign_id,
        channel_id=lead.channel_id,
        team=lead.team,
        region=lead.region,
        tags=lead.tags,
        status=LEAD_STATUS.get(lead.status, pb.LEAD_STATUS_UNSPECIFIED),
        rep_id=lead.rep_id or "",
        rule=lead.rule,
        captured_at=ts(lead.captured_at),
        assigned_at=ts(lead.assigned_at),
        first_follow_up_at=ts(lead.first_follow_up_at),
    )


def ownership_to_pb(o: OwnershipView) -> pb.Ownership:
    return pb.Ownership(
        ownership_id=o.id,
        tenant_id=o.tenant_id,
        customer_id=o.customer_id,
        rep_id=o.rep_id,
        corp_id=o.corp_id,
        external_userid=o.external_userid,
        channel_id=o.channel_id,
        state=o.state,
        status=OWNERSHIP_STATUS.get(o.status, pb.OWNERSHIP_STATUS_UNSPECIFIED),
        started_at=ts(o.started_at),
        ended_at=ts(o.ended_at),
        end_reason=END_REASON.get(o.end_reason, ev.OWNERSHIP_END_REASON_UNSPECIFIED),
        remark=o.remark,
        welcome_status=o.welcome_status,
        welcome_latency_ms=o.welcome_latency_ms or 0,
    )


def transfer_to_pb(t: TransferView) -> pb.CustomerTransfer:
    return pb.CustomerTransfer(
        transfer_id=t.id,
        batch_id=t.batch_id,
        customer_id=t.customer_id,
        from_rep_id=t.from_rep_id,
        to_rep_id=t.to_rep_id,
        mode=t.mode,
        status=TRANSFER_STATUS.get(t.status, pb.TRANSFER_STATUS_UNSPECIFIED),
        reason=t.reason,
        actor=t.actor,
        requested_at=ts(t.requested_at),
        completed_at=ts(t.completed_at),
        leads_moved=t.leads_moved,
        opportunities_moved=t.opportunities_moved,
    )


def follow_up_to_pb(f: FollowUpView) -> pb.FollowUp:
    return pb.FollowUp(
        follow_up_id=f.id,
        tenant_id=f.tenant_id,
        customer_id=f.customer_id,
        rep_id=f.rep_id,
        kind=KIND_PB[Kind(f.kind)],
        summary=f.summary,
        inbound=f.inbound,
        at=ts(f.at),
        lead_id=f.lead_id or "",
    )


def money_from(m: common_pb2.Money) -> Money:
    return Money(m.currency, m.amount_minor)


def items_from(items: Any) -> list[Item]:
    return [Item(i.sku, i.name, i.quantity, money_from(i.unit_price), i.category) for i in items]


def opportunity_to_pb(o: OpportunityView) -> pb.Opportunity:
    return pb.Opportunity(
        opportunity_id=o.id,
        tenant_id=o.tenant_id,
        customer_id=o.customer_id,
        rep_id=o.rep_id,
        lead_id=o.lead_id or "",
        title=o.title,
        stage=o.stage,
        expected_amount=common_pb2.Money(currency=o.currency, amount_minor=o.expected_minor),
        created_at=ts(o.created_at),
        closed_at=ts(o.closed_at),
    )


def order_to_pb(o: OrderView) -> pb.Order:
    return pb.Order(
        order_id=o.id,
        tenant_id=o.tenant_id,
        customer_id=o.customer_id,
        rep_id=o.rep_id or "",
        opportunity_id=o.opportunity_id or "",
        lead_id=o.lead_id or "",
        items=items_to_pb(o.items),
        amount=common_pb2.Money(currency=o.currency, amount_minor=o.amount_minor),
        status=ORDER_STATUS.get(o.status, pb.ORDER_STATUS_UNSPECIFIED),
        placed_at=ts(o.placed_at),
        paid_at=ts(o.paid_at),
        refunded=common_pb2.Money(currency=o.currency, amount_minor=o.refunded_minor),
    )


def report_to_pb(f: RepFigures) -> pb.RepReport:
    return pb.RepReport(
        rep_id=f.rep_id,
        name=f.name,
        team=f.team,
        new_friends=f.new_friends,
        deleted_by_customer=f.deleted_by_customer,
        leads_assigned=f.leads_assigned,
        first_response_seconds=f.first_response_seconds,
        follow_ups_by_kind=f.follow_ups_by_kind,
        opportunities_by_stage=f.opportunities_by_stage,
        won_revenue=common_pb2.Money(
            currency=f.main_revenue.currency, amount_minor=f.main_revenue.amount_minor
        ),
        orders_paid=f.orders_paid,
        revenue=[
            pb.RepRevenue(
                won_revenue=common_pb2.Money(currency=r.currency, amount_minor=r.amount_minor),
                orders_paid=r.orders_paid,
            )
            for r in f.revenue
        ],
        conversion_rate=f.conversion_rate,
        customers_owned=f.customers_owned,
        tasks_open=f.tasks_open,
        tasks_completed=f.tasks_completed,
    )
