"""identity's customer.merged, .unmerged and .forgotten, applied to sends and interactions.

A merge moves the merged customer's sends and interaction rows to the survivor (logged,
`loopkit.customer_rows`); its 48-hour window rows become the survivor's, one per account (the
later time kept; the merged one's row set aside). An unmerge gives all of it back; the
survivor's window keeps the later time it took.

A forget erases what the gateway holds on the person: the message of every send addressed to
them (recipient openid or external ids, text, template data) and every interaction row of their
customer id or their openids. Send rows stay, blanked, as the record that something was sent
(pseudonymous customer id, status, WeChat msgid); a send still waiting is failed, never sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_gateway.interactions.service import customer_subject, openid_subject
from closedloop_gateway.models import Base, InteractionRow, SendRow
from closedloop_gateway.sends.model import ERASED, FAILED, FORGOTTEN, PAUSED, QUEUED
from loopkit.customer_rows import (
    forget_moves,
    give_back_customer,
    record_moves,
    repoint_customer,
    row_values,
    set_aside,
    take_moves,
)
from loopkit.timestamps import utc


async def forgotten(session: AsyncSession, tenant: str, ids: Sequence[str]) -> None:
    ids = list(ids)
    await forget_moves(session, Base.metadata, tenant_id=tenant, customer_ids=ids)
    sends = (
        await session.scalars(
            select(SendRow).where(SendRow.tenant_id == tenant, SendRow.customer_id.in_(ids))
        )
    ).all()
    openids = {str(s.payload.get("openid", "")) for s in sends} - {""}
    for send in sends:
        if send.status in (QUEUED, PAUSED):
            send.status, send.errmsg, send.next_attempt_at = FAILED, FORGOTTEN, None
        # ERASED as fingerprint: a retry under the same key never matches, so never resends.
        send.payload, send.fingerprint = {}, ERASED
    i = InteractionRow
    await session.execute(
        delete(i).where(
            i.tenant_id == tenant,
            or_(
                i.customer_id.in_(ids),
                i.subject.in_([customer_subject(c) for c in ids]),
                i.subject.in_([openid_subject(o) for o in openids]),
            ),
        )
    )
    await session.flush()


async def merged(
    session: AsyncSession, tenant: str, survivor: str, merged_id: str, merge_id: str = ""
) -> None:
    log = {"tenant_id": tenant, "merge_id": merge_id, "from_id": merged_id, "to_id": survivor}
    await repoint_customer(
        session, [(SendRow, "customer_id"), (InteractionRow, "customer_id")], **log
    )
    # The merged customer's window rows become the survivor's, keeping the latest per account.
    i = InteractionRow
    theirs = (
        await session.scalars(
            select(i).where(i.tenant_id == tenant, i.subject == customer_subject(merged_id))
        )
    ).all()
    for row in theirs:
        mine = await session.get(i, (tenant, row.app_id, customer_subject(survivor)))
        if mine is None:
            await session.execute(
                update(i)
                .where(i.tenant_id == tenant, i.app_id == row.app_id, i.subject == row.subject)
                .values(subject=customer_subject(survivor))
            )
            await record_moves(session, i, "subject", [(row.app_id,)], **log)
        else:
            mine.last_at = max(utc(mine.last_at), utc(row.last_at))
            # Kept as the merged customer's (the re-point above named the survivor already).
            await set_aside(
                session, i, "customer_id", [{**row_values(row), "customer_id": merged_id}], **log
            )
            await session.delete(row)
    await session.flush()


async def unmerged(
    session: AsyncSession, tenant: str, restored: str, survivor: str, merge_id: str
) -> None:
    """What came with `restored` on that merge is its own again: window rows first (their
    subject names the customer), then every logged row."""
    i = InteractionRow
    for move in await take_moves(
        session, i, "subject", tenant_id=tenant, merge_id=merge_id, from_id=restored
    ):
        await session.execute(
            update(i)
            .where(
                i.tenant_id == tenant,
                i.app_id == move.row_key[0],
                i.subject.in_([customer_subject(move.to_id), customer_subject(survivor)]),
            )
            .values(subject=customer_subject(restored))
        )
    await give_back_customer(
        session,
        Base.metadata,
        tenant_id=tenant,
        merge_id=merge_id,
        restored_id=restored,
        survivor_id=survivor,
    )
    await session.flush()
