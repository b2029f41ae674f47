"""SQL of the daily counters and pauses."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_gateway.models import QuotaUsageRow


async def get(session: AsyncSession, account_id: str, api: str, day: str) -> QuotaUsageRow | None:
    """The day's row, locked until the transaction ends (PostgreSQL; SQLite locks the whole
    database for a writing transaction anyway), so concurrent replicas never lose a count."""
    return await session.get(
        QuotaUsageRow, (account_id, api, day), populate_existing=True, with_for_update=True
    )


def new_row(account_id: str, api: str, day: str, used: int) -> QuotaUsageRow:
    return QuotaUsageRow(
        account_id=account_id,
        api=api,
        day=day,
        used=used,
        paused_until=None,
        paused_errcode=0,
        paused_errmsg="",
    )


async def of_day(session: AsyncSession, account_id: str, day: str) -> list[QuotaUsageRow]:
    rows = await session.scalars(
        select(QuotaUsageRow).where(
            QuotaUsageRow.account_id == account_id, QuotaUsageRow.day == day
        )
    )
    return list(rows)
