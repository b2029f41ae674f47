"""Every query of rep_tasks (the table this concept owns)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_conversion.models import RepTaskRow


async def by_source(
    session: AsyncSession, tenant: str, kind: str, source_id: str
) -> RepTaskRow | None:
    return await session.scalar(
        select(RepTaskRow).where(
            RepTaskRow.tenant_id == tenant,
            RepTaskRow.kind == kind,
            RepTaskRow.source_id == source_id,
        )
    )


async def get(session: AsyncSession, tenant: str, task_id: str) -> RepTaskRow | None:
    row = await session.get(RepTaskRow, task_id)
    return row if row is not None and row.tenant_id == tenant else None


async def listed(
    session: AsyncSession, tenant: str, rep_id: str, status: str, limit: int
) -> Sequence[RepTaskRow]:
    query = select(RepTaskRow).where(RepTaskRow.tenant_id == tenant)
    if rep_id:
        query = query.where(RepTaskRow.rep_id == rep_id)
    if status:
        query = query.where(RepTaskRow.status == status)
    query = query.order_by(RepTaskRow.due_at, RepTaskRow.id).limit(limit)
    return (await session.scalars(query)).all()


async def counts(
    session: AsyncSession, tenant: str, rep_ids: Sequence[str], start: datetime, end: datetime
) -> tuple[dict[str, int], dict[str, int]]:
    """(open now, completed in [start, end)) per rep, two GROUP BYs."""
    base = select(RepTaskRow.rep_id, func.count()).where(
        RepTaskRow.tenant_id == tenant, RepTaskRow.rep_id.in_(list(rep_ids))
    )
    open_now = await session.execute(
        base.where(RepTaskRow.status == "open").group_by(RepTaskRow.rep_id)
    )
    done = await session.execute(
        base.where(
            RepTaskRow.status == "done",
            RepTaskRow.completed_at >= start,
            RepTaskRow.completed_at < end,
        ).group_by(RepTaskRow.rep_id)
    )
    return (
        {rep: int(n) for rep, n in open_now.all()},
        {rep: int(n) for rep, n in done.all()},
    )


async def open_ids(session: AsyncSession, tenant: str, customer_ids: Sequence[str]) -> list[str]:
    """The open tasks of these customers (what `forget` removes)."""
    found = await session.scalars(
        select(RepTaskRow.id).where(
            RepTaskRow.tenant_id == tenant,
            RepTaskRow.customer_id.in_(customer_ids),
            RepTaskRow.status == "open",
        )
    )
    return list(found)


async def forget(session: AsyncSession, tenant: str, customer_ids: Sequence[str]) -> None:
    """A forgotten customer's tasks: the rep's notes may describe the person, and an open task
    has nobody left to call (removed rather than completed, so the report does not count it)."""
    await session.execute(
        update(RepTaskRow)
        .where(RepTaskRow.tenant_id == tenant, RepTaskRow.customer_id.in_(customer_ids))
        .values(outcome_note="")
    )
    await session.execute(
        delete(RepTaskRow).where(
            RepTaskRow.tenant_id == tenant,
            RepTaskRow.customer_id.in_(customer_ids),
            RepTaskRow.status == "open",
        )
    )
