"""The counts behind channel and campaign stats. Reads only, over the touches and leads tables
(owned by the touches and leads concepts): a report joins both, so its queries live here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_acquisition.models import LeadRow, TouchRow


async def touch_counts(
    session: AsyncSession,
    tenant_id: str,
    channel_ids: Sequence[str],
    since: datetime | None,
    until: datetime | None,
) -> dict[str, int]:
    """Touches by kind ('expired' counts touches on expired codes whatever their kind)."""
    live = select(TouchRow.kind, func.count()).where(
        TouchRow.tenant_id == tenant_id,
        TouchRow.channel_id.in_(channel_ids),
        TouchRow.expired.is_(False),
    )
    if since is not None:
        live = live.where(TouchRow.occurred_at >= since)
    if until is not None:
        live = live.where(TouchRow.occurred_at < until)
    grouped = await session.execute(live.group_by(TouchRow.kind))
    counts = {str(kind): int(n) for kind, n in grouped}
    expired = select(func.count()).where(
        TouchRow.tenant_id == tenant_id,
        TouchRow.channel_id.in_(channel_ids),
        TouchRow.expired.is_(True),
    )
    if since is not None:
        expired = expired.where(TouchRow.occurred_at >= since)
    if until is not None:
        expired = expired.where(TouchRow.occurred_at < until)
    counts["expired"] = int((await session.execute(expired)).scalar_one())
    return counts


async def lead_counts(
    session: AsyncSession,
    tenant_id: str,
    channel_ids: Sequence[str],
    since: datetime | None,
    until: datetime | None,
) -> tuple[int, int]:
    """(leads, repeat submissions) of leads credited to these channels."""
    query = select(func.count(), func.coalesce(func.sum(LeadRow.submissions), 0)).where(
        LeadRow.tenant_id == tenant_id, LeadRow.channel_id.in_(channel_ids)
    )
    if since is not None:
        query = query.where(LeadRow.created_at >= since)
    if until is not None:
        query = query.where(LeadRow.created_at < until)
    leads, submissions = (await session.execute(query)).one()
    return int(leads), int(submissions) - int(leads)


async def unique_customers(
    session: AsyncSession,
    tenant_id: str,
    channel_ids: Sequence[str],
    since: datetime | None,
    until: datetime | None,
) -> int:
    touched = select(TouchRow.customer_id).where(
        TouchRow.tenant_id == tenant_id,
        TouchRow.channel_id.in_(channel_ids),
        TouchRow.customer_id.is_not(None),
    )
    led = select(LeadRow.customer_id).where(
        LeadRow.tenant_id == tenant_id, LeadRow.channel_id.in_(channel_ids)
    )
    if since is not None:
        touched = touched.where(TouchRow.occurred_at >= since)
        led = led.where(LeadRow.created_at >= since)
    if until is not None:
        touched = touched.where(TouchRow.occurred_at < until)
        led = led.where(LeadRow.created_at < until)
    union = touched.union(led).subquery()
    return int((await session.execute(select(func.count()).select_from(union))).scalar_one())


def _utc_day(session: AsyncSession, column: Any) -> Any:
    """The UTC calendar day of a timestamp column, as the backend computes it."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.date(column)  # SQLite keeps UTC timestamps as text


async def daily_counts(
    session: AsyncSession,
    tenant_id: str,
    channel_ids: Sequence[str],
    since: datetime | None,
    until: datetime | None,
) -> dict[str, dict[str, int]]:
    """{day: {touch kind: n, "lead": n}} of live touches and leads on these channels."""
    days: dict[str, dict[str, int]] = {}
    touch_day = _utc_day(session, TouchRow.occurred_at)
    touches = select(touch_day, TouchRow.kind, func.count()).where(
        TouchRow.tenant_id == tenant_id,
        TouchRow.channel_id.in_(channel_ids),
        TouchRow.expired.is_(False),
    )
    lead_day = _utc_day(session, LeadRow.created_at)
    leads = select(lead_day, func.count()).where(
        LeadRow.tenant_id == tenant_id, LeadRow.channel_id.in_(channel_ids)
    )
    if since is not None:
        touches = touches.where(TouchRow.occurred_at >= since)
        leads = leads.where(LeadRow.created_at >= since)
    if until is not None:
        touches = touches.where(TouchRow.occurred_at < until)
        leads = leads.where(LeadRow.created_at < until)
    for day, kind, n in await session.execute(touches.group_by(touch_day, TouchRow.kind)):
        days.setdefault(str(day), {})[str(kind)] = int(n)
    for day, n in await session.execute(leads.group_by(lead_day)):
        days.setdefault(str(day), {})["lead"] = int(n)
    return dict(sorted(days.items()))
