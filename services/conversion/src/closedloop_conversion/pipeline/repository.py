"""Every query of the pipeline concept; the only writer of follow_ups, pipelines, opportunities,
orders and refunds. Its reads of other concepts' tables (ownerships, leads, lead assignments) are
marked where they are."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    func,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_conversion.models import (
    FollowUpRow,
    LeadAssignmentRow,
    LeadRow,
    OpportunityRow,
    OrderRow,
    OwnershipRow,
    PipelineRow,
    RefundRow,
)
from loopkit.sqltime import seconds_between


class PipelineRepository:
    """Follow-ups, pipelines, opportunities, orders and refunds: the tables the pipeline writes."""

    def add(
        self,
        session: AsyncSession,
        row: FollowUpRow | PipelineRow | OpportunityRow | OrderRow | RefundRow,
    ) -> None:
        session.add(row)

    async def move_open_opportunities(
        self, session: AsyncSession, tenant: str, customer_id: str, from_rep_id: str, to_rep_id: str
    ) -> int:
        result = await session.execute(
            update(OpportunityRow)
            .where(
                OpportunityRow.tenant_id == tenant,
                OpportunityRow.customer_id == customer_id,
                OpportunityRow.rep_id == from_rep_id,
                OpportunityRow.closed_at.is_(None),
            )
            .values(rep_id=to_rep_id)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def blank_follow_up_summaries(
        self, session: AsyncSession, tenant: str, customer_ids: Sequence[str]
    ) -> None:
        """customer.forgotten: what was said is personal data; the follow-ups still count."""
        await session.execute(
            update(FollowUpRow)
            .where(FollowUpRow.tenant_id == tenant, FollowUpRow.customer_id.in_(customer_ids))
            .values(summary="")
        )

    async def known_message_ids(
        self, session: AsyncSession, tenant: str, ids: Sequence[str]
    ) -> set[str]:
        if not ids:
            return set()
        query = select(FollowUpRow.message_id).where(
            FollowUpRow.tenant_id == tenant, FollowUpRow.message_id.in_(list(ids))
        )
        return {m for m in (await session.execute(query)).scalars().all() if m}

    async def customer_of_contact(
        self, session: AsyncSession, tenant: str, rep_id: str, external_userid: str
    ) -> str | None:
        """The customer behind a rep's WeCom contact (the friendship may have ended since; a read
        of ownership's table)."""
        query = (
            select(OwnershipRow.customer_id)
            .where(
                OwnershipRow.tenant_id == tenant,
                OwnershipRow.rep_id == rep_id,
                OwnershipRow.external_userid == external_userid,
            )
            .limit(1)
        )
        found = (await session.execute(query)).scalar_one_or_none()
        if found is not None:
            return found
        query = (
            select(OwnershipRow.customer_id)
            .where(
                OwnershipRow.tenant_id == tenant, OwnershipRow.external_userid == external_userid
            )
            .limit(1)
        )
        return (await session.execute(query)).scalar_one_or_none()

    # A read of ownership's table: the customer's owner takes their opportunities and orders.
    async def owner_rep_id(
        self, session: AsyncSession, tenant: str, customer_id: str
    ) -> str | None:
        query = (
            select(OwnershipRow.rep_id)
            .where(
                OwnershipRow.tenant_id == tenant,
                OwnershipRow.customer_id == customer_id,
                OwnershipRow.status == "active",
            )
            .order_by(OwnershipRow.started_at)
            .limit(1)
        )
        return (await session.execute(query)).scalar_one_or_none()

    # A read of sales' table: an order without a lead closes the customer's latest.
    async def latest_lead(
        self, session: AsyncSession, tenant: str, customer_id: str
    ) -> LeadRow | None:
        query = (
            select(LeadRow)
            .where(LeadRow.tenant_id == tenant, LeadRow.customer_id == customer_id)
            .order_by(LeadRow.captured_at.desc(), LeadRow.id.desc())
            .limit(1)
        )
        return (await session.execute(query)).scalar_one_or_none()

    async def pipeline(self, session: AsyncSession, tenant: str) -> PipelineRow | None:
        return await session.get(PipelineRow, tenant)

    async def opportunity(
        self, session: AsyncSession, tenant: str, opp_id: str
    ) -> OpportunityRow | None:
        query = select(OpportunityRow).where(
            OpportunityRow.tenant_id == tenant, OpportunityRow.id == opp_id
        )
        return (await session.execute(query.with_for_update())).scalar_one_or_none()

    async def order(self, session: AsyncSession, tenant: str, order_id: str) -> OrderRow | None:
        query = select(OrderRow).where(OrderRow.tenant_id == tenant, OrderRow.id == order_id)
        return (await session.execute(query.with_for_update())).scalar_one_or_none()

    async def paid_orders_before(
        self, session: AsyncSession, tenant: str, customer_id: str, order_id: str
    ) -> int:
        query = select(func.count()).where(
            OrderRow.tenant_id == tenant,
            OrderRow.customer_id == customer_id,
            OrderRow.id != order_id,
            OrderRow.paid_at.is_not(None),
        )
        return int((await session.execute(query)).scalar_one())

    # --- report figures: GROUP BYs (reads of ownership's and sales' tables too) ---------------
    # `reps` is a SELECT of the reported reps' ids; each method is one statement however many
    # rows the tenant has.

    async def friend_counts(
        self, session: AsyncSession, tenant: str, reps: Select[Any], start: datetime, end: datetime
    ) -> dict[str, tuple[int, int, int]]:
        """rep -> (new friends in the range, deleted by the customer in the range, owned now)."""
        o = OwnershipRow
        new = and_(o.started_at >= start, o.started_at < end, o.end_reason != "transferred")
        deleted = and_(
            o.end_reason == "customer_deleted_rep", o.ended_at >= start, o.ended_at < end
        )
        query = (
            select(o.rep_id, _count_if(new), _count_if(deleted), _count_if(o.status == "active"))
            .where(o.tenant_id == tenant, o.rep_id.in_(reps))
            .group_by(o.rep_id)
        )
        return {rep: (int(n), int(d), int(a)) for rep, n, d, a in await session.execute(query)}

    async def lead_figures(
        self, session: AsyncSession, tenant: str, reps: Select[Any], start: datetime, end: datetime
    ) -> dict[str, tuple[int, int, float]]:
        """rep -> (leads assigned to them in the range, of those the ones with a paid order,
        mean seconds from assignment to first follow-up over the leads they still hold)."""
        a, lead = LeadAssignmentRow, LeadRow
        pairs = (
            select(a.to_rep_id.label("rep_id"), a.lead_id.label("lead_id"))
            .where(a.tenant_id == tenant, a.at >= start, a.at < end, a.to_rep_id.in_(reps))
            .distinct()
            .subquery()
        )
        converted = (
            select(OrderRow.lead_id.label("lead_id"))
            .where(
                OrderRow.tenant_id == tenant,
                OrderRow.paid_at.is_not(None),
                OrderRow.lead_id.is_not(None),
            )
            .distinct()
            .subquery()
        )
        wait = seconds_between(lead.first_follow_up_at, lead.assigned_at)
        held = and_(lead.rep_id == pairs.c.rep_id, wait.is_not(None))
        query = (
            select(
                pairs.c.rep_id,
                func.count(),
                func.count(converted.c.lead_id),
                func.avg(case((held & (wait < 0), 0.0), (held, wait), else_=None)),
            )
            .select_from(pairs)
            .outerjoin(lead, and_(lead.tenant_id == tenant, lead.id == pairs.c.lead_id))
            .outerjoin(converted, converted.c.lead_id == pairs.c.lead_id)
            .group_by(pairs.c.rep_id)
        )
        return {
            rep: (int(n), int(won), float(mean or 0.0))
            for rep, n, won, mean in await session.execute(query)
        }

    async def follow_up_counts(
        self, session: AsyncSession, tenant: str, reps: Select[Any], start: datetime, end: datetime
    ) -> list[tuple[str, str, int]]:
        """(rep, kind, the rep's own follow-ups of that kind in the range)."""
        f = FollowUpRow
        query = (
            select(f.rep_id, f.kind, func.count())
            .where(
                f.tenant_id == tenant,
                f.rep_id.in_(reps),
                f.at >= start,
                f.at < end,
                f.inbound.is_(False),
            )
            .group_by(f.rep_id, f.kind)
        )
        return [(rep, kind, int(n)) for rep, kind, n in await session.execute(query)]

    async def opportunity_counts(
        self, session: AsyncSession, tenant: str, reps: Select[Any]
    ) -> list[tuple[str, str, int]]:
        """(rep, stage, the rep's opportunities in that stage now)."""
        o = OpportunityRow
        query = (
            select(o.rep_id, o.stage, func.count())
            .where(o.tenant_id == tenant, o.rep_id.in_(reps))
            .group_by(o.rep_id, o.stage)
        )
        return [(rep, stage, int(n)) for rep, stage, n in await session.execute(query)]

    async def revenue(
        self, session: AsyncSession, tenant: str, reps: Select[Any], start: datetime, end: datetime
    ) -> list[tuple[str, str, int, int]]:
        """(rep, currency, paid minus refunded in minor units, orders paid) per rep and currency:
        orders paid in the range, less refunds made in the range in their order's currency."""
        paid = select(
            OrderRow.rep_id.label("rep_id"),
            OrderRow.currency.label("currency"),
            OrderRow.amount_minor.label("amount"),
            literal(1).label("paid"),
        ).where(
            OrderRow.tenant_id == tenant,
            OrderRow.rep_id.in_(reps),
            OrderRow.paid_at >= start,
            OrderRow.paid_at < end,
        )
        refunded = (
            select(
                RefundRow.rep_id.label("rep_id"),
                OrderRow.currency.label("currency"),
                (-RefundRow.amount_minor).label("amount"),
                literal(0).label("paid"),
            )
            .join(
                OrderRow,
                and_(OrderRow.tenant_id == RefundRow.tenant_id, OrderRow.id == RefundRow.order_id),
            )
            .where(
                RefundRow.tenant_id == tenant,
                RefundRow.rep_id.in_(reps),
                RefundRow.at >= start,
                RefundRow.at < end,
            )
        )
        moves = union_all(paid, refunded).subquery()
        query = (
            select(
                moves.c.rep_id, moves.c.currency, func.sum(moves.c.amount), func.sum(moves.c.paid)
            )
            .group_by(moves.c.rep_id, moves.c.currency)
            .order_by(moves.c.rep_id, moves.c.currency)
        )
        return [
            (rep, currency, int(amount), int(n))
            for rep, currency, amount, n in await session.execute(query)
        ]


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)
