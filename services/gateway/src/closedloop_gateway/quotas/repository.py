"""SQL of the daily counters and pauses: one conditional UPDATE per call counts it, unless the
day's budget is used or the API is paused."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_gateway.models import QuotaUsageRow


async def count_call(
    session: AsyncSession, account_id: str, api: str, *, day: str, cap: int, at: datetime
) -> bool:
    conditions = [
        QuotaUsageRow.account_id == account_id,
        QuotaUsageRow.api == api,
        QuotaUsageRow.day == day,
        or_(QuotaUsageRow.paused_until.is_(None), QuotaUsageRow.paused_until <= at),
    ]
    if cap > 0:
        conditions.append(QuotaUsageRow.used < cap)
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(QuotaUsageRow)
        .where(*conditions)
        .execution_options(synchronize_session=False)
        .values(used=QuotaUsageRow.used + 1)
    )
    return result.rowcount == 1


async def get(session: AsyncSession, account_id: str, api: str, day: str) -> QuotaUsageRow | None:
    return await session.get(QuotaUsageRow, (account_id, api, day), populate_existing=True)


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
