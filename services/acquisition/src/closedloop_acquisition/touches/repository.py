"""Every query on touches; the only writer of the touches table."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_acquisition.models import TouchRow
from loopkit.customer_rows import repoint_customer

MAX_TOUCHES_READ = 500
# The two-key advisory lock space of a referrer's id (the kit's leases use 0x1EA5, the relay's
# claims 0x0B0C): a share visit naming them holds it shared until it commits; a forget of them
# waits for it exclusively, so the forget's UPDATE sees every visit that asked identity before
# the forget.
_REFERRER_SPACE = 0x7EF0
_SHARED = text("SELECT pg_advisory_xact_lock_shared(:space, hashtext(:key))")
_EXCLUSIVE = text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))")
_WAIT_FROM = text("SAVEPOINT referrer_wait")
_WAITED = text("ROLLBACK TO SAVEPOINT referrer_wait")  # releases the lock it took
_WAIT_DONE = text("RELEASE SAVEPOINT referrer_wait")


def _postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def hold_referrer(session: AsyncSession, tenant_id: str, referrer_id: str) -> None:
    """Until the transaction ends, a forget of `referrer_id` waits (PostgreSQL; SQLite has one
    writer at a time). Take it before asking identity whether the referrer is still known."""
    if referrer_id and _postgres(session):
        await session.execute(
            _SHARED, {"space": _REFERRER_SPACE, "key": f"{tenant_id}:{referrer_id}"}
        )


async def wait_for_visits(
    session: AsyncSession, tenant_id: str, customer_ids: Sequence[str]
) -> None:
    """Wait for share visits naming these customers in flight (`hold_referrer`), without holding
    anything after: each lock is taken in a savepoint that is rolled back, which releases it.

    A visit takes its lock before it asks identity, and identity forgot the customers before it
    published the forget, so a visit that takes the lock after this wait asks identity after the
    forget and names nobody: holding the lock to the commit protected nothing. It made a cycle:
    a consumer's transaction applies a batch of events, so a batch of visits holding R1 waited
    for R2 while a batch of forgets holding R2 (an earlier event of its batch) waited for R1 (a
    PostgreSQL deadlock, broken after `deadlock_timeout` by failing one batch)."""
    if not _postgres(session):
        return
    for customer_id in sorted(set(customer_ids)):
        # A savepoint of its own, not the ORM's: rolling back an ORM savepoint would expire
        # the objects the batch's earlier events loaded.
        await session.execute(_WAIT_FROM)
        await session.execute(
            _EXCLUSIVE, {"space": _REFERRER_SPACE, "key": f"{tenant_id}:{customer_id}"}
        )
        await session.execute(_WAITED)
        await session.execute(_WAIT_DONE)


async def add(session: AsyncSession, row: TouchRow) -> None:
    session.add(row)
    await session.flush()


async def touches_of(session: AsyncSession, tenant_id: str, customer_id: str) -> list[TouchRow]:
    result = await session.execute(
        select(TouchRow)
        .where(TouchRow.tenant_id == tenant_id, TouchRow.customer_id == customer_id)
        .order_by(TouchRow.occurred_at.desc())
        .limit(MAX_TOUCHES_READ)
    )
    return list(result.scalars())


async def touches_of_customers(
    session: AsyncSession, tenant_id: str, customer_ids: Sequence[str]
) -> list[TouchRow]:
    result = await session.execute(
        select(TouchRow).where(
            TouchRow.tenant_id == tenant_id, TouchRow.customer_id.in_(customer_ids)
        )
    )
    return list(result.scalars())


async def referrer_of_code(
    session: AsyncSession, tenant_id: str, code: str, *, hold: bool = False
) -> str:
    """The referrer a touch with this code names. `hold`: see `held_referrer`."""
    query = (
        select(TouchRow.referrer_customer_id)
        .where(
            TouchRow.tenant_id == tenant_id,
            TouchRow.referral_code == code,
            TouchRow.referrer_customer_id.is_not(None),
        )
        .limit(1)
    )
    if hold:
        query = query.with_for_update(read=True)
    return (await session.execute(query)).scalar_one_or_none() or ""


async def held_referrer(
    session: AsyncSession, tenant_id: str, *, touch_id: str = "", code: str = ""
) -> str:
    """The referrer the touch `touch_id` (else a touch with `code`) names now, that touch row
    share-locked until the transaction ends (PostgreSQL). A merge or forget of the referrer
    writes their touches before it moves or unties leads: it waits for a lead credited here
    (and moves or unties it), or this read waits for it and sees the survivor, or nobody."""
    if not touch_id:
        return await referrer_of_code(session, tenant_id, code, hold=True)
    result = await session.execute(
        select(TouchRow.referrer_customer_id)
        .where(TouchRow.tenant_id == tenant_id, TouchRow.id == touch_id)
        .with_for_update(read=True)
    )
    return result.scalar_one_or_none() or ""


async def rename_referrer(
    session: AsyncSession, tenant_id: str, touch_id: str, named: str, live: str
) -> TouchRow:
    """The touch names `live` as its referrer ("" = nobody) if it still names `named`."""
    row = await session.get(TouchRow, touch_id, with_for_update=True)
    assert row is not None and row.tenant_id == tenant_id  # committed just before
    if row.referrer_customer_id == named:
        row.referrer_customer_id = live or None
        await session.flush()
    return row


async def forget(session: AsyncSession, tenant_id: str, customer_ids: Sequence[str]) -> None:
    """Drops the identities and parameters of these customers' touches (the rows stay)."""
    await session.execute(
        update(TouchRow)
        .where(TouchRow.tenant_id == tenant_id, TouchRow.customer_id.in_(customer_ids))
        .values(identities=[], parameters={})
    )


async def forget_referrer(
    session: AsyncSession, tenant_id: str, customer_ids: Sequence[str]
) -> None:
    """Other customers' touches no longer name these customers as their referrer (the touches
    and their referral codes stay, for the counts)."""
    await session.execute(
        update(TouchRow)
        .where(TouchRow.tenant_id == tenant_id, TouchRow.referrer_customer_id.in_(customer_ids))
        .values(referrer_customer_id=None)
    )


async def repoint(
    session: AsyncSession, tenant_id: str, from_id: str, to_id: str, merge_id: str = ""
) -> None:
    columns = [(TouchRow, "customer_id"), (TouchRow, "referrer_customer_id")]
    await repoint_customer(
        session, columns, tenant_id=tenant_id, from_id=from_id, to_id=to_id, merge_id=merge_id
    )
