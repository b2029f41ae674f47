"""Every query of the pipeline concept."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
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


async def known_message_ids(session: AsyncSession, tenant: str, ids: Sequence[str]) -> set[str]:
    if not ids:
        return set()
    query = select(FollowUpRow.message_id).where(
        FollowUpRow.tenant_id == tenant, FollowUpRow.message_id.in_(list(ids))
    )
    return {m for m in (await session.execute(query)).scalars().all() if m}


async def customer_of_contact(
    session: AsyncSession, tenant: str, rep_id: str, external_userid: str
) -> str | None:
    """The customer behind a rep's WeCom contact (the friendship may have ended since)."""
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
        .where(OwnershipRow.tenant_id == tenant, OwnershipRow.external_userid == external_userid)
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def owner_rep_id(session: AsyncSession, tenant: str, customer_id: str) -> str | None:
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


async def latest_lead(session: AsyncSession, tenant: str, customer_id: str) -> LeadRow | None:
    query = (
        select(LeadRow)
        .where(LeadRow.tenant_id == tenant, LeadRow.customer_id == customer_id)
        .order_by(LeadRow.captured_at.desc(), LeadRow.id.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def pipeline(session: AsyncSession, tenant: str) -> PipelineRow | None:
    return await session.get(PipelineRow, tenant)


async def opportunity(session: AsyncSession, tenant: str, opp_id: str) -> OpportunityRow | None:
    query = select(OpportunityRow).where(
        OpportunityRow.tenant_id == tenant, OpportunityRow.id == opp_id
    )
    return (await session.execute(query.with_for_update())).scalar_one_or_none()


async def order(session: AsyncSession, tenant: str, order_id: str) -> OrderRow | None:
    query = select(OrderRow).where(OrderRow.tenant_id == tenant, OrderRow.id == order_id)
    return (await session.execute(query.with_for_update())).scalar_one_or_none()


async def paid_orders_before(
    session: AsyncSession, tenant: str, customer_id: str, order_id: str
) -> int:
    query = select(func.count()).where(
        OrderRow.tenant_id == tenant,
        OrderRow.customer_id == customer_id,
        OrderRow.id != order_id,
        OrderRow.paid_at.is_not(None),
    )
    return int((await session.execute(query)).scalar_one())


# --- report inputs -----------------------------------------------------------------------------


async def ownerships(session: AsyncSession, tenant: str) -> Sequence[OwnershipRow]:
    query = select(OwnershipRow).where(OwnershipRow.tenant_id == tenant)
    return (await session.execute(query)).scalars().all()


async def assignments(
    session: AsyncSession, tenant: str, start: datetime, end: datetime
) -> Sequence[LeadAssignmentRow]:
    query = select(LeadAssignmentRow).where(
        LeadAssignmentRow.tenant_id == tenant,
        LeadAssignmentRow.at >= start,
        LeadAssignmentRow.at < end,
    )
    return (await session.execute(query)).scalars().all()


async def leads_by_id(session: AsyncSession, tenant: str, ids: Sequence[str]) -> Sequence[LeadRow]:
    if not ids:
        return []
    query = select(LeadRow).where(LeadRow.tenant_id == tenant, LeadRow.id.in_(list(ids)))
    return (await session.execute(query)).scalars().all()


async def follow_ups(
    session: AsyncSession, tenant: str, start: datetime, end: datetime
) -> Sequence[FollowUpRow]:
    query = select(FollowUpRow).where(
        FollowUpRow.tenant_id == tenant, FollowUpRow.at >= start, FollowUpRow.at < end
    )
    return (await session.execute(query)).scalars().all()


async def opportunities(session: AsyncSession, tenant: str) -> Sequence[OpportunityRow]:
    query = select(OpportunityRow).where(OpportunityRow.tenant_id == tenant)
    return (await session.execute(query)).scalars().all()


async def orders(session: AsyncSession, tenant: str) -> Sequence[OrderRow]:
    query = select(OrderRow).where(OrderRow.tenant_id == tenant, OrderRow.paid_at.is_not(None))
    return (await session.execute(query)).scalars().all()


async def refunds(
    session: AsyncSession, tenant: str, start: datetime, end: datetime
) -> Sequence[RefundRow]:
    query = select(RefundRow).where(
        RefundRow.tenant_id == tenant, RefundRow.at >= start, RefundRow.at < end
    )
    return (await session.execute(query)).scalars().all()
