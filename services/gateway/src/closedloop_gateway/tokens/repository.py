"""SQL of the token table: the row, the lease (a conditional UPDATE, the same on SQLite and
PostgreSQL) and storing a fetched token under it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_gateway.models import AccessTokenRow


async def read(session: AsyncSession, account_id: str) -> AccessTokenRow | None:
    return await session.get(AccessTokenRow, account_id, populate_existing=True)


async def ensure(session: AsyncSession, account_id: str) -> None:
    """Create the account's row (generation 0, no token) unless it exists."""
    if await read(session, account_id) is not None:
        return
    try:
        async with session.begin_nested():
            session.add(
                AccessTokenRow(
                    account_id=account_id,
                    token_cipher="",
                    generation=0,
                    expires_at=None,
                    lease_holder="",
                    lease_until=None,
                    refreshed_at=None,
                )
            )
    except IntegrityError:
        pass  # another replica created it first


async def take_lease(
    session: AsyncSession,
    account_id: str,
    *,
    holder: str,
    seen_generation: int,
    at: datetime,
    until: datetime,
) -> bool:
    """Take the refresh lease if the token is still the one we saw and nobody else holds it."""
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(AccessTokenRow)
        .where(
            AccessTokenRow.account_id == account_id,
            AccessTokenRow.generation == seen_generation,
            or_(
                AccessTokenRow.lease_holder == "",
                AccessTokenRow.lease_until < at,
                AccessTokenRow.lease_holder == holder,
            ),
        )
        .execution_options(synchronize_session=False)
        .values(lease_holder=holder, lease_until=until)
    )
    return result.rowcount == 1


async def store(
    session: AsyncSession,
    account_id: str,
    *,
    holder: str,
    seen_generation: int,
    sealed: str,
    expires_at: datetime,
    at: datetime,
) -> bool:
    """Store the token fetched under our lease and release it; False if the lease was lost."""
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(AccessTokenRow)
        .where(
            AccessTokenRow.account_id == account_id,
            AccessTokenRow.lease_holder == holder,
            AccessTokenRow.generation == seen_generation,
        )
        .execution_options(synchronize_session=False)
        .values(
            token_cipher=sealed,
            generation=seen_generation + 1,
            expires_at=expires_at,
            refreshed_at=at,
            lease_holder="",
            lease_until=None,
        )
    )
    return result.rowcount == 1


async def release(session: AsyncSession, account_id: str, holder: str) -> None:
    await session.execute(
        update(AccessTokenRow)
        .where(AccessTokenRow.account_id == account_id, AccessTokenRow.lease_holder == holder)
        .execution_options(synchronize_session=False)
        .values(lease_holder="", lease_until=None)
    )


async def expiring(session: AsyncSession, before: datetime) -> list[str]:
    """Accounts whose token expires before `before` (or that have none yet)."""
    rows = await session.execute(
        select(AccessTokenRow.account_id).where(
            or_(AccessTokenRow.expires_at.is_(None), AccessTokenRow.expires_at < before)
        )
    )
    return [r[0] for r in rows]
