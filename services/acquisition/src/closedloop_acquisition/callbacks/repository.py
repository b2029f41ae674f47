"""Every query on the WeChat inbox (stored callback messages); its only writer."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import case, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_acquisition.models import WechatInboxRow


async def add(session: AsyncSession, row: WechatInboxRow) -> None:
    session.add(row)
    await session.flush()


async def stored(session: AsyncSession, app_id: str, dedup_key: str) -> str | None:
    """The id of the message stored under this key, if it was stored before."""
    found = await session.execute(
        select(WechatInboxRow.id).where(
            WechatInboxRow.app_id == app_id, WechatInboxRow.dedup_key == dedup_key
        )
    )
    return found.scalar_one_or_none()


async def pending(session: AsyncSession, limit: int) -> list[WechatInboxRow]:
    result = await session.execute(
        select(WechatInboxRow)
        .where(WechatInboxRow.processed_at.is_(None))
        .order_by(WechatInboxRow.received_at, WechatInboxRow.id)
        .limit(limit)
    )
    return list(result.scalars())


async def get(session: AsyncSession, inbox_id: str) -> WechatInboxRow | None:
    return await session.get(WechatInboxRow, inbox_id)


async def mark(session: AsyncSession, inbox_id: str, values: dict[str, object]) -> bool:
    """Sets `values` on the message unless it was processed already; True if it was not."""
    changed = await session.execute(
        update(WechatInboxRow)
        .where(WechatInboxRow.id == inbox_id, WechatInboxRow.processed_at.is_(None))
        .values(values)
    )
    return int(getattr(changed, "rowcount", 0) or 0) == 1


def one_more_attempt() -> object:
    return WechatInboxRow.attempts + 1


async def claim(session: AsyncSession, inbox_id: str, now: datetime) -> bool:
    """Marks the message processed (one more attempt); False if another worker had it."""
    return await mark(session, inbox_id, {"processed_at": now, "attempts": one_more_attempt()})


async def forget_senders(session: AsyncSession, tenant_id: str, openids: Collection[str]) -> None:
    """Erases the sender and content of these openids' messages, and the dedup key of an event
    (WeChat's FromUserName + CreateTime): it names the sender too."""
    if not openids:
        return
    await session.execute(
        update(WechatInboxRow)
        .where(
            WechatInboxRow.tenant_id == tenant_id,
            WechatInboxRow.from_user.in_(sorted(openids)),
        )
        .values(
            from_user="",
            message={},
            dedup_key=case(
                (
                    WechatInboxRow.dedup_key.like("event:%"),
                    literal("forgotten:") + WechatInboxRow.id,
                ),
                else_=WechatInboxRow.dedup_key,
            ),
        )
    )
