"""Every query of customer_notices, and the one read of activity's table the send-time check
needs (activity owns it: consent, unsubscribe and the contact as they are now)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.models import ActivityRow, NoticeRow
from loopkit.customer_rows import repoint_customer


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


class NoticeRepository:
    async def by_key(self, session: AsyncSession, tenant: str, key: str) -> NoticeRow | None:
        return await session.scalar(
            select(NoticeRow).where(NoticeRow.tenant_id == tenant, NoticeRow.idempotency_key == key)
        )

    async def add(self, session: AsyncSession, row: NoticeRow) -> None:
        session.add(row)
        await session.flush()

    async def get(self, session: AsyncSession, notice_id: str) -> NoticeRow | None:
        return await session.scalar(
            select(NoticeRow)
            .where(NoticeRow.id == notice_id)
            .execution_options(populate_existing=True)
        )

    async def pending(self, session: AsyncSession, limit: int) -> list[NoticeRow]:
        rows = await session.scalars(
            select(NoticeRow)
            .where(NoticeRow.status == "pending")
            .order_by(NoticeRow.created_at)
            .limit(limit)
        )
        return list(rows)

    async def move(
        self, session: AsyncSession, notice_id: str, from_status: str, **values: object
    ) -> bool:
        """One conditional UPDATE: only a notice still in `from_status` changes (so two workers
        never both take one)."""
        result = await session.execute(
            update(NoticeRow)
            .where(NoticeRow.id == notice_id, NoticeRow.status == from_status)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) > 0

    async def requeue_stale(self, session: AsyncSession, claimed_before: datetime) -> int:
        result = await session.execute(
            update(NoticeRow)
            .where(NoticeRow.status == "sending", NoticeRow.claimed_at < claimed_before)
            .values(status="pending", claimed_at=None)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def recipient(
        self, session: AsyncSession, tenant: str, customer_id: str
    ) -> ActivityRow | None:
        return await session.scalar(
            select(ActivityRow)
            .where(ActivityRow.tenant_id == tenant, ActivityRow.customer_id == customer_id)
            .execution_options(populate_existing=True)
        )

    async def of_customer(
        self, session: AsyncSession, tenant: str, customer_id: str
    ) -> list[NoticeRow]:
        rows = await session.scalars(
            select(NoticeRow)
            .where(NoticeRow.tenant_id == tenant, NoticeRow.customer_id == customer_id)
            .order_by(NoticeRow.created_at)
        )
        return list(rows)

    async def repoint(
        self, session: AsyncSession, tenant: str, merged: str, survivor: str, merge_id: str
    ) -> None:
        """The merged customer's notices (sent or still owed) become the survivor's, logged for
        an unmerge. Their keys are unique per tenant, not per customer: nothing can clash."""
        await session.flush()
        await repoint_customer(
            session,
            [(NoticeRow, "customer_id")],
            tenant_id=tenant,
            from_id=merged,
            to_id=survivor,
            merge_id=merge_id,
        )
        session.expire_all()

    async def forget(self, session: AsyncSession, tenant: str, ids: Sequence[str]) -> None:
        await session.execute(
            delete(NoticeRow)
            .where(NoticeRow.tenant_id == tenant, NoticeRow.customer_id.in_(list(ids)))
            .execution_options(synchronize_session=False)
        )
