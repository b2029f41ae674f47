"""Per-rep figures over a time range, and the leaderboard across reps: a handful of GROUP BYs in
the database (the statement count does not grow with the tenant's rows), revenue one line per
currency (money in two currencies is never added together)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_conversion.models import RepRow
from closedloop_conversion.pipeline.repository import PipelineRepository
from closedloop_conversion.sales.repository import SalesRepository
from closedloop_conversion.tasks.repository import counts as task_counts
from loopkit.errors import InvalidArgument, NotFound

_pipeline = PipelineRepository()
# Reads of the sales concept's reps (the report lists them by name and team).
_reps = SalesRepository()


@dataclass(frozen=True)
class Revenue:
    """One currency of a rep's revenue: paid in the range minus refunded in the range."""

    currency: str
    amount_minor: int
    orders_paid: int


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
    # One line per currency, by currency code.
    revenue: list[Revenue] = field(default_factory=list)
    conversion_rate: float = 0.0
    tasks_open: int = 0
    tasks_completed: int = 0

    @property
    def main_revenue(self) -> Revenue:
        """The line of the largest amount (CNY 0 when none): what the single-currency fields
        of the old report show."""
        if not self.revenue:
            return Revenue("CNY", 0, 0)
        return max(self.revenue, key=lambda r: abs(r.amount_minor))

    @property
    def orders_paid(self) -> int:
        return sum(r.orders_paid for r in self.revenue)


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
    if not figures:
        return []
    # The reported reps as a subquery: every figure below is one GROUP BY over them.
    ids = select(RepRow.id).where(RepRow.tenant_id == tenant)
    if rep_id:
        ids = ids.where(RepRow.id == rep_id)
    elif team:
        ids = ids.where(RepRow.team == team)
    # (A rep created while the report runs may show up in a later statement: skipped.)
    for who, (new, deleted, owned) in (
        await _pipeline.friend_counts(session, tenant, ids, start, end)
    ).items():
        if (f := figures.get(who)) is None:
            continue
        f.new_friends, f.deleted_by_customer, f.customers_owned = new, deleted, owned
    for who, (assigned, converted, wait) in (
        await _pipeline.lead_figures(session, tenant, ids, start, end)
    ).items():
        if (f := figures.get(who)) is None:
            continue
        f.leads_assigned, f.first_response_seconds = assigned, wait
        f.conversion_rate = converted / assigned if assigned else 0.0
    kinds: dict[str, dict[str, int]] = defaultdict(dict)
    for who, kind, n in await _pipeline.follow_up_counts(session, tenant, ids, start, end):
        kinds[who][kind] = n
    stages: dict[str, dict[str, int]] = defaultdict(dict)
    for who, stage, n in await _pipeline.opportunity_counts(session, tenant, ids):
        stages[who][stage] = n
    for who, currency, amount, paid in await _pipeline.revenue(session, tenant, ids, start, end):
        if (f := figures.get(who)) is not None:
            f.revenue.append(Revenue(currency, amount, paid))
    open_now, completed = await task_counts(session, tenant, list(figures), start, end)
    for f in figures.values():
        f.follow_ups_by_kind, f.opportunities_by_stage = kinds[f.rep_id], stages[f.rep_id]
        f.tasks_open, f.tasks_completed = open_now.get(f.rep_id, 0), completed.get(f.rep_id, 0)
    return sorted(
        figures.values(),
        key=lambda f: (-f.main_revenue.amount_minor, -f.leads_assigned, f.name, f.rep_id),
    )
