"""SQL of the sends table: claims are conditional UPDATEs (the same on SQLite and PostgreSQL), so
each send is executed by one replica at a time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_gateway.models import SendRow
from closedloop_gateway.sends.model import PAUSED, QUEUED, SENDING


async def by_key(session: AsyncSession, tenant_id: str, key: str) -> SendRow | None:
    found = await session.scalars(
        select(SendRow).where(SendRow.tenant_id == tenant_id, SendRow.idempotency_key == key)
    )
    return found.first()


async def by_id(session: AsyncSession, send_id: str) -> SendRow | None:
    return await session.get(SendRow, send_id, populate_existing=True)


async def due(session: AsyncSession, at: datetime, limit: int) -> list[tuple[str, str]]:
    """(id, status) of queued or paused sends whose time has come, oldest first."""
    rows = await session.execute(
        select(SendRow.id, SendRow.status)
        .where(SendRow.status.in_((QUEUED, PAUSED)), SendRow.next_attempt_at <= at)
        .order_by(SendRow.next_attempt_at)
        .limit(limit)
    )
    return [(r[0], r[1]) for r in rows]


async def claim(
    session: AsyncSession,
    send_id: str,
    seen_status: str,
    *,
    holder: str,
    at: datetime,
    until: datetime,
) -> bool:
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(SendRow)
        .where(SendRow.id == send_id, SendRow.status == seen_status, SendRow.next_attempt_at <= at)
        .execution_options(synchronize_session=False)
        .values(status=SENDING, lease_holder=holder, lease_until=until, called_at=at)
    )
    return result.rowcount == 1


async def in_doubt(session: AsyncSession, at: datetime, limit: int) -> list[str]:
    """Sends a replica claimed and never settled (it stopped): their lease has run out."""
    rows = await session.execute(
        select(SendRow.id)
        .where(SendRow.status == SENDING, SendRow.lease_until < at)
        .order_by(SendRow.lease_until)
        .limit(limit)
    )
    return [r[0] for r in rows]


async def take_over(
    session: AsyncSession, send_id: str, *, holder: str, at: datetime, until: datetime
) -> bool:
    """Take an in-doubt send over from the replica that stopped."""
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(SendRow)
        .where(SendRow.id == send_id, SendRow.status == SENDING, SendRow.lease_until < at)
        .execution_options(synchronize_session=False)
        .values(lease_holder=holder, lease_until=until)
    )
    return result.rowcount == 1
