"""Per-rep figures over a time range, and the leaderboard across reps."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_conversion.common import utc, utc_or_none
from closedloop_conversion.models import OrderRow, RepRow
from closedloop_conversion.pipeline.repository import PipelineRepository
from closedloop_conversion.sales.repository import SalesRepository
from closedloop_conversion.tasks.repository import counts as task_counts
from loopkit.errors import InvalidArgument, NotFound

_pipeline = PipelineRepository()
# Reads of the sales concept's reps (the report lists them by name and team).
_reps = SalesRepository()


@dataclass
class RepFigures:
    rep_id: str
    name: str
    team: str
    new_friends: int = 0
    deleted_by_customer: int = 0
    customers_owned: int = 0
    leads_assigned: int = 0
    first_response_seconds: float = 0.0
    follow_ups_by_kind: dict[str, int] = field(default_factory=dict)
    opportunities_by_stage: dict[str, int] = field(default_factory=dict)
    currency: str = "CNY"
    won_revenue_minor: int = 0
    orders_paid: int = 0
    conversion_rate: float = 0.0
    tasks_open: int = 0
    tasks_completed: int = 0


def _in(value: datetime | None, start: datetime, end: datetime) -> bool:
    return value is not None and start <= utc(value) < end


async def rep_report(
    session: AsyncSession,
    tenant: str,
    *,
    rep_id: str,
    team: str,
    start: datetime,
    end: datetime,
) -> list[RepFigures]:
    if end <= start:
        raise InvalidArgument("must be after from", field="to")
    reps: Sequence[RepRow]
    if rep_id:
        rep = await _reps.rep(session, tenant, rep_id)
        if rep is None:
            raise NotFound("no such rep", field="rep_id")
        reps = [rep]
    else:
        reps = await _reps.reps(session, tenant, team=team)
    figures = {r.id: RepFigures(r.id, r.name, r.team) for r in reps}
    paid = await _pipeline.orders(session, tenant)
    await _friends(session, tenant, figures, start, end)
    await _leads(session, tenant, figures, paid, start=start, end=end)
    await _activity(session, tenant, figures, start, end)
    await _revenue(session, tenant, figures, paid, start=start, end=end)
    open_now, completed = await task_counts(session, tenant, list(figures), start, end)
    for f in figures.values():
        f.tasks_open, f.tasks_completed = open_now.get(f.rep_id, 0), completed.get(f.rep_id, 0)
    return sorted(
        figures.values(), key=lambda f: (-f.won_revenue_minor, -f.leads_assigned, f.name, f.rep_id)
    )


async def _friends(
    session: AsyncSession,
    tenant: str,
    figures: dict[str, RepFigures],
    start: datetime,
    end: datetime,
) -> None:
    for o in await _pipeline.ownerships(session, tenant):
        f = figures.get(o.rep_id)
        if f is None:
            continue
        if _in(o.started_at, start, end) and o.end_reason != "transferred":
            f.new_friends += 1
        if o.end_reason == "customer_deleted_rep" and _in(o.ended_at, start, end):
            f.deleted_by_customer += 1
        if o.status == "active":
            f.customers_owned += 1


async def _leads(
    session: AsyncSession,
    tenant: str,
    figures: dict[str, RepFigures],
    paid: Sequence[OrderRow],
    *,
    start: datetime,
    end: datetime,
) -> None:
    assigned: dict[str, set[str]] = defaultdict(set)
    for a in await _pipeline.assignments(session, tenant, start, end):
        if a.to_rep_id in figures:
            assigned[a.to_rep_id].add(a.lead_id)
    all_leads = sorted({lead_id for ids in assigned.values() for lead_id in ids})
    leads = {lead.id: lead for lead in await _pipeline.leads_by_id(session, tenant, all_leads)}
    converted = {o.lead_id for o in paid if o.lead_id}
    for rep_key, lead_ids in assigned.items():
        f = figures[rep_key]
        f.leads_assigned = len(lead_ids)
        waits = []
        for lead_id in lead_ids:
            lead = leads.get(lead_id)
            if lead is None or lead.rep_id != rep_key:
                continue
            first, at = utc_or_none(lead.first_follow_up_at), utc_or_none(lead.assigned_at)
            if first is not None and at is not None:
                waits.append(max(0.0, (first - at).total_seconds()))
        f.first_response_seconds = sum(waits) / len(waits) if waits else 0.0
        f.conversion_rate = len(lead_ids & converted) / len(lead_ids)


async def _activity(
    session: AsyncSession,
    tenant: str,
    figures: dict[str, RepFigures],
    start: datetime,
    end: datetime,
) -> None:
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for fu in await _pipeline.follow_ups(session, tenant, start, end):
        if fu.rep_id in figures and not fu.inbound:
            kinds[fu.rep_id][fu.kind] += 1
    stages: dict[str, Counter[str]] = defaultdict(Counter)
    for opp in await _pipeline.opportunities(session, tenant):
        if opp.rep_id in figures:
            stages[opp.rep_id][opp.stage] += 1
    for f in figures.values():
        f.follow_ups_by_kind = dict(kinds[f.rep_id])
        f.opportunities_by_stage = dict(stages[f.rep_id])


async def _revenue(
    session: AsyncSession,
    tenant: str,
    figures: dict[str, RepFigures],
    paid: Sequence[OrderRow],
    *,
    start: datetime,
    end: datetime,
) -> None:
    revenue: dict[str, Counter[str]] = defaultdict(Counter)
    currency_of = {o.id: o.currency for o in paid}
    for order in paid:
        if order.rep_id in figures and _in(order.paid_at, start, end):
            revenue[order.rep_id][order.currency] += order.amount_minor
            figures[order.rep_id].orders_paid += 1
    for refund in await _pipeline.refunds(session, tenant, start, end):
        if refund.rep_id in figures:
            revenue[refund.rep_id][currency_of.get(refund.order_id, "CNY")] -= refund.amount_minor
    for f in figures.values():
        if revenue[f.rep_id]:
            currency, amount = max(revenue[f.rep_id].items(), key=lambda kv: abs(kv[1]))
            f.currency, f.won_revenue_minor = currency, amount
