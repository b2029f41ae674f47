"""identity's customer.merged and customer.forgotten, applied to sends and interactions.

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
from closedloop_gateway.models import InteractionRow, SendRow
from closedloop_gateway.sends.model import ERASED, FAILED, FORGOTTEN, PAUSED, QUEUED
from loopkit.customer_rows import repoint_customer
from loopkit.timestamps import utc


async def forgotten(session: AsyncSession, tenant: str, ids: Sequence[str]) -> None:
    ids = list(ids)
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


async def merged(session: AsyncSession, tenant: str, survivor: str, merged_id: str) -> None:
    await repoint_customer(
        session,
        [(SendRow, "customer_id"), (InteractionRow, "customer_id")],
        tenant_id=tenant,
        from_id=merged_id,
        to_id=survivor,
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
        else:
            mine.last_at = max(utc(mine.last_at), utc(row.last_at))
            await session.delete(row)
    await session.flush()
