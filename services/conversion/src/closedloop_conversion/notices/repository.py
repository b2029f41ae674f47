"""Every query of rep_notices (the table this concept owns), and the copy of a notice's outcome
onto its task."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_conversion.models import RepNoticeRow, RepTaskRow
from closedloop_conversion.sales.repository import literal_ids
from loopkit.bulk import insert_rows

PENDING = "pending"
_NOTICES = cast(Table, RepNoticeRow.__table__)


async def by_key(session: AsyncSession, tenant: str, key: str) -> RepNoticeRow | None:
    return await session.scalar(
        select(RepNoticeRow).where(
            RepNoticeRow.tenant_id == tenant, RepNoticeRow.idempotency_key == key
        )
    )


async def keys_stored(session: AsyncSession, tenant: str, keys: Collection[str]) -> set[str]:
    """Which of the tenant's idempotency keys have a notice already (keys as literals: see
    `literal_ids`)."""
    if not keys:
        return set()
    query = select(RepNoticeRow.idempotency_key).where(
        RepNoticeRow.tenant_id == tenant, RepNoticeRow.idempotency_key.in_(literal_ids(keys))
    )
    return set((await session.execute(query)).scalars())


async def insert_new(
    session: AsyncSession, rows: Sequence[dict[str, Any]], *, skip_taken: bool = True
) -> None:
    """Several notices in one statement; a key stored meanwhile (another replica) is skipped,
    unless `skip_taken` is off: then a taken key fails the statement (and the transaction), as
    a batch of notices of leads created in this very transaction may (no other can have stored
    their keys first: the lead's own insert would fail first), and a large batch goes as a COPY
    (`loopkit.bulk`)."""
    taken = ("tenant_id", "idempotency_key") if skip_taken else ()
    await insert_rows(session, _NOTICES, rows, skip_conflicts_on=taken)


async def claim_due(
    session: AsyncSession, at: datetime, until: datetime, limit: int
) -> Sequence[RepNoticeRow]:
    """Pending notices due at `at`, moved to `until` so another replica's round skips them
    (SKIP LOCKED on PostgreSQL; SQLite's writer lock does the skipping)."""
    rows = (
        await session.scalars(
            select(RepNoticeRow)
            .where(RepNoticeRow.status == PENDING, RepNoticeRow.next_attempt_at <= at)
            .order_by(RepNoticeRow.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for row in rows:
        row.next_attempt_at = until
    await session.flush()
    return rows


async def get(session: AsyncSession, notice_id: str) -> RepNoticeRow | None:
    return await session.get(RepNoticeRow, notice_id, with_for_update=True)


async def forget_tasks(session: AsyncSession, tenant: str, task_ids: Sequence[str]) -> None:
    """Notices about removed tasks: not sent if still pending, and their text blanked."""
    if not task_ids:
        return
    await session.execute(
        update(RepNoticeRow)
        .where(RepNoticeRow.tenant_id == tenant, RepNoticeRow.task_id.in_(list(task_ids)))
        .values(text="")
    )
    await session.execute(
        update(RepNoticeRow)
        .where(
            RepNoticeRow.tenant_id == tenant,
            RepNoticeRow.task_id.in_(list(task_ids)),
            RepNoticeRow.status == PENDING,
        )
        .values(
            status="not_notified", detail="not notified (customer forgotten)", next_attempt_at=None
        )
    )


async def mark_task(
    session: AsyncSession, tenant: str, task_id: str, status: str, detail: str
) -> None:
    await session.execute(
        update(RepTaskRow)
        .where(RepTaskRow.tenant_id == tenant, RepTaskRow.id == task_id)
        .values(rep_notice=status, rep_notice_detail=detail[:300])
    )
