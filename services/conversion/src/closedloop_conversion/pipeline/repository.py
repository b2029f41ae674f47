"""Every query of the pipeline concept; the only writer of follow_ups, pipelines, opportunities,
orders and refunds. Its reads of other concepts' tables (ownerships, leads, lead assignments) are
marked where they are."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
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

    # --- report inputs (reads of ownership's and sales' tables too) ------------------------------

    async def ownerships(self, session: AsyncSession, tenant: str) -> Sequence[OwnershipRow]:
        query = select(OwnershipRow).where(OwnershipRow.tenant_id == tenant)
        return (await session.execute(query)).scalars().all()

    async def assignments(
        self, session: AsyncSession, tenant: str, start: datetime, end: datetime
    ) -> Sequence[LeadAssignmentRow]:
        query = select(LeadAssignmentRow).where(
            LeadAssignmentRow.tenant_id == tenant,
            LeadAssignmentRow.at >= start,
            LeadAssignmentRow.at < end,
        )
        return (await session.execute(query)).scalars().all()

    async def leads_by_id(
        self, session: AsyncSession, tenant: str, ids: Sequence[str]
    ) -> Sequence[LeadRow]:
        if not ids:
            return []
        query = select(LeadRow).where(LeadRow.tenant_id == tenant, LeadRow.id.in_(list(ids)))
        return (await session.execute(query)).scalars().all()

    async def follow_ups(
        self, session: AsyncSession, tenant: str, start: datetime, end: datetime
    ) -> Sequence[FollowUpRow]:
        query = select(FollowUpRow).where(
            FollowUpRow.tenant_id == tenant, FollowUpRow.at >= start, FollowUpRow.at < end
        )
        return (await session.execute(query)).scalars().all()

    async def opportunities(self, session: AsyncSession, tenant: str) -> Sequence[OpportunityRow]:
        query = select(OpportunityRow).where(OpportunityRow.tenant_id == tenant)
        return (await session.execute(query)).scalars().all()

    async def orders(self, session: AsyncSession, tenant: str) -> Sequence[OrderRow]:
        query = select(OrderRow).where(OrderRow.tenant_id == tenant, OrderRow.paid_at.is_not(None))
        return (await session.execute(query)).scalars().all()

    async def refunds(
        self, session: AsyncSession, tenant: str, start: datetime, end: datetime
    ) -> Sequence[RefundRow]:
        query = select(RefundRow).where(
            RefundRow.tenant_id == tenant, RefundRow.at >= start, RefundRow.at < end
        )
        return (await session.execute(query)).scalars().all()
