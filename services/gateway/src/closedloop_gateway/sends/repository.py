"""SQL of the sends table: claims are conditional UPDATEs (the same on SQLite and PostgreSQL), so
each send is executed by one replica at a time."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import CursorResult, Integer, Table, Update, bindparam, select, update
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


def _claim_statement(skip_locked: bool) -> Update:
    due = (
        select(SendRow.id)
        .where(SendRow.status.in_((QUEUED, PAUSED)), SendRow.next_attempt_at <= bindparam("at"))
        .order_by(SendRow.next_attempt_at)
        .limit(bindparam("limit", type_=Integer))
    )
    if skip_locked:
        due = due.with_for_update(skip_locked=True)
    return (
        update(SendRow)
        .where(SendRow.id.in_(due.scalar_subquery()))
        .values(
            status=SENDING,
            lease_holder=bindparam("holder"),
            lease_until=bindparam("until"),
            called_at=bindparam("at"),
        )
        .returning(SendRow)
        .execution_options(synchronize_session=False, populate_existing=True)
    )


# Built once (as _FOR_SETTLING and _INSERT_NEW below): a statement rebuilt per call costs
# SQLAlchemy its cache key every time.
_CLAIM = {"sqlite": _claim_statement(False), "postgresql": _claim_statement(True)}


async def claim_due(
    session: AsyncSession, *, holder: str, at: datetime, until: datetime, limit: int
) -> list[SendRow]:
    """Claim up to `limit` queued or paused sends whose time has come, oldest first, in one
    statement (UPDATE ... WHERE id IN (due ones) RETURNING the rows).

    PostgreSQL: rows another replica is claiming are skipped (FOR UPDATE SKIP LOCKED). SQLite: a
    writing transaction holds the whole database, so no other replica reads them meanwhile.
    """
    claimed = await session.scalars(
        _CLAIM[session.get_bind().dialect.name],
        {"holder": holder, "at": at, "until": until, "limit": limit},
    )
    return list(claimed)


_FOR_SETTLING = (
    select(SendRow)
    .where(SendRow.id.in_(bindparam("ids", expanding=True)))
    .with_for_update()
    .execution_options(populate_existing=True)
)


async def for_settling(session: AsyncSession, ids: list[str]) -> dict[str, SendRow]:
    """The rows of a batch of finished attempts, locked until the settle commits."""
    rows = await session.scalars(_FOR_SETTLING, {"ids": ids})
    return {row.id: row for row in rows}


_SENDS = cast(Table, SendRow.__table__)
# Built once per dialect: a constant statement whose values are parameters hits SQLAlchemy's
# compiled cache (a statement with .values(...) is keyed anew on every call).
_INSERT_NEW = {
    name: insert(_SENDS)
    .on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
    .returning(_SENDS.c.id)
    for name, insert in (("sqlite", sqlite_insert), ("postgresql", pg_insert))
}


async def insert_new(session: AsyncSession, rows: list[SendRow]) -> set[str]:
    """Store new sends, each unless its (tenant, key) exists: one statement (a multi-row
    INSERT ... ON CONFLICT DO NOTHING RETURNING id), no race with a concurrent insert of the same
    key. The ids of the rows stored."""
    if not rows:
        return set()
    columns = [c.key for c in _SENDS.columns]
    values = [{c: getattr(row, c) for c in columns} for row in rows]
    stored = await session.execute(_INSERT_NEW[session.get_bind().dialect.name], values)
    return {r[0] for r in stored}


async def by_keys(session: AsyncSession, tenant_id: str, keys: list[str]) -> dict[str, SendRow]:
    found = await session.scalars(
        select(SendRow).where(SendRow.tenant_id == tenant_id, SendRow.idempotency_key.in_(keys))
    )
    return {row.idempotency_key: row for row in found if row.idempotency_key is not None}


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


async def renew(session: AsyncSession, ids: list[str], *, holder: str, until: datetime) -> None:
    """Extend this replica's claims still in its hands (waiting for the pace or answering), so
    a send is only in doubt once its replica stopped renewing."""
    await session.execute(
        update(SendRow)
        .where(SendRow.id.in_(ids), SendRow.status == SENDING, SendRow.lease_holder == holder)
        .execution_options(synchronize_session=False)
        .values(lease_until=until)
    )
