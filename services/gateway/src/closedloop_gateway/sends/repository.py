"""SQL of the sends table: claims are conditional UPDATEs (the same on SQLite and PostgreSQL), so
each send is executed by one replica at a time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CursorResult, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_gateway.models import SendRow
from closedloop_gateway.sends.model import PAUSED, QUEUED, SENDING


async def by_key(session: AsyncSession, tenant_id: str, key: str) -> SendRow | None:
    found = await session.scalars(
        select(SendRow).where(SendRow.tenant_id == tenant_id, SendRow.idempotency_key == key)
    )
    return found.first()


async def by_id(session: AsyncSession, send_id: str, *, lock: bool = False) -> SendRow | None:
    return await session.get(SendRow, send_id, populate_existing=True, with_for_update=lock)


async def claim_due(
    session: AsyncSession, *, holder: str, at: datetime, until: datetime, limit: int
) -> list[SendRow]:
    """Claim up to `limit` queued or paused sends whose time has come, oldest first, in one
    statement (UPDATE ... WHERE id IN (due ones) RETURNING the rows).

    PostgreSQL: rows another replica is claiming are skipped (FOR UPDATE SKIP LOCKED). SQLite: a
    writing transaction holds the whole database, so no other replica reads them meanwhile.
    """
    due = (
        select(SendRow.id)
        .where(SendRow.status.in_((QUEUED, PAUSED)), SendRow.next_attempt_at <= at)
        .order_by(SendRow.next_attempt_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name != "sqlite":
        due = due.with_for_update(skip_locked=True)
    claimed = await session.scalars(
        update(SendRow)
        .where(SendRow.id.in_(due.scalar_subquery()))
        .values(status=SENDING, lease_holder=holder, lease_until=until, called_at=at)
        .returning(SendRow)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return list(claimed)


async def for_settling(session: AsyncSession, ids: list[str]) -> dict[str, SendRow]:
    """The rows of a batch of finished attempts, locked until the settle commits."""
    rows = await session.scalars(
        select(SendRow)
        .where(SendRow.id.in_(ids))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {row.id: row for row in rows}


async def insert_new(session: AsyncSession, row: SendRow) -> bool:
    """Store a new send unless its (tenant, key) exists: one statement, no race (a concurrent
    insert of the same key makes this one do nothing). True if it was stored."""
    values = {c.key: getattr(row, c.key) for c in SendRow.__table__.columns}
    dialect = session.get_bind().dialect.name
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    stored = await session.execute(
        insert(SendRow)
        .values(values)
        .on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
        .returning(SendRow.id)
    )
    return stored.first() is not None


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
