"""The official account's 48-hour customer-service window.

WeChat lets an account send a customer-service message to a follower only within 48 hours of the
follower's last interaction (a message, a menu click, a subscribe or a scan). The gateway learns
interactions from acquisition's events (it receives the callbacks): `touch.recorded` for scans
and subscribes (with the openid) and `interaction.recorded` for messages and menu clicks (with
the customer). A text send is refused unless its openid or customer interacted in the window.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_gateway.models import InteractionRow
from loopkit.timestamps import utc


def openid_subject(openid: str) -> str:
    return f"openid:{openid}"


def customer_subject(customer_id: str) -> str:
    return f"customer:{customer_id}"


async def record(
    session: AsyncSession,
    tenant_id: str,
    app_id: str,
    subject: str,
    at: datetime,
    *,
    customer_id: str = "",
) -> None:
    """Remember the interaction if it is the latest (events may arrive out of order)."""
    row = await session.get(InteractionRow, (tenant_id, app_id, subject))
    if row is None:
        row = InteractionRow(
            tenant_id=tenant_id, app_id=app_id, subject=subject, last_at=at, customer_id=""
        )
        session.add(row)
        await session.flush()
    elif utc(row.last_at) < at:
        row.last_at = at
    if customer_id:
        row.customer_id = customer_id


async def last_interaction(
    session: AsyncSession, tenant_id: str, app_id: str, subjects: list[str]
) -> datetime | None:
    rows = await session.scalars(
        select(InteractionRow.last_at).where(
            InteractionRow.tenant_id == tenant_id,
            InteractionRow.app_id == app_id,
            InteractionRow.subject.in_(subjects),
        )
    )
    found = [utc(r) for r in rows]
    return max(found) if found else None


async def within_window(
    session: AsyncSession,
    tenant_id: str,
    app_id: str,
    *,
    openid: str,
    customer_id: str,
    at: datetime,
    window: timedelta,
) -> bool:
    subjects = [openid_subject(openid)]
    if customer_id:
        subjects.append(customer_subject(customer_id))
    last = await last_interaction(session, tenant_id, app_id, subjects)
    return last is not None and at - last <= window
