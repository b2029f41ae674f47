"""Notices: single messages owed to one customer (a fission reward's "you did it"), stored in the
transaction that decided them and sent later by the notice worker through the gateway under the
notice's idempotency key. Consent, unsubscribe and the contact are checked again when it goes
out, as for broadcasts, and so is an opt-out (consent withdrawn for that channel or all).
Callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop_retention.clock import utc
from closedloop_retention.consent.service import ConsentService
from closedloop_retention.models import NoticeRow
from closedloop_retention.notices.repository import NoticeRepository
from closedloop_retention.notices.views import NoticeToSend, NoticeView
from loopkit.views import view_of

# A notice in one of these states is never sent again: its key may expire.
FINISHED = ("sent", "skipped", "failed")


class NoticeService:
    def __init__(self, consent: ConsentService, repository: NoticeRepository | None = None) -> None:
        self._consent = consent
        self._repo = repository or NoticeRepository()

    async def enqueue(
        self,
        session: AsyncSession,
        tenant: str,
        customer_id: str,
        *,
        kind: str,
        content: str,
        key: str,
        at: datetime,
    ) -> NoticeView:
        """Owes the customer this message, once per key."""
        existing = await self._repo.by_key(session, tenant, key)
        if existing is not None:
            return view_of(NoticeView, existing)
        row = NoticeRow(
            id=str(ULID()),
            tenant_id=tenant,
            customer_id=customer_id,
            kind=kind,
            content=content[:1000],
            idempotency_key=key,
            status="pending",
            reason="",
            message_id="",
            created_at=utc(at),
            claimed_at=None,
            sent_at=None,
        )
        await self._repo.add(session, row)
        return view_of(NoticeView, row)

    async def due(self, session: AsyncSession, limit: int) -> list[NoticeView]:
        return [view_of(NoticeView, r) for r in await self._repo.pending(session, limit)]

    async def claim(
        self, session: AsyncSession, notice_id: str, at: datetime
    ) -> NoticeToSend | None:
        """Takes the notice for sending; None when another worker has it, or when the customer
        cannot be messaged now (then it is `skipped` with the reason, for good)."""
        if not await self._repo.move(
            session, notice_id, "pending", status="sending", claimed_at=at
        ):
            return None
        row = await self._repo.get(session, notice_id)
        assert row is not None  # just moved
        who = await self._repo.recipient(session, row.tenant_id, row.customer_id)
        if who is None or not who.contact_value:
            reason = "no_contact"
        else:
            # The one consent check every send makes: unsubscribed, no consent, or an opt-out
            # of this channel or all.
            reason = await self._consent.blocked(
                session, row.tenant_id, row.customer_id, who.contact_kind
            )
            if not reason:
                return NoticeToSend(
                    view_of(NoticeView, row), who.contact_kind, who.contact_scope, who.contact_value
                )
        await self._repo.move(session, notice_id, "sending", status="skipped", reason=reason)
        return None

    async def mark(
        self,
        session: AsyncSession,
        notice_id: str,
        *,
        message_id: str,
        sent_at: datetime | None,
        failure: str,
    ) -> None:
        if failure:
            await self._repo.move(session, notice_id, "sending", status="failed", reason=failure)
        else:
            await self._repo.move(
                session, notice_id, "sending", status="sent", message_id=message_id, sent_at=sent_at
            )

    async def unclaim(self, session: AsyncSession, notice_id: str) -> None:
        """A transient send error: back in the queue; the same key keeps it from going twice."""
        await self._repo.move(session, notice_id, "sending", status="pending", claimed_at=None)

    async def requeue_stale(self, session: AsyncSession, claimed_before: datetime) -> int:
        return await self._repo.requeue_stale(session, claimed_before)

    async def of_customer(
        self, session: AsyncSession, tenant: str, customer_id: str
    ) -> list[NoticeView]:
        return [
            view_of(NoticeView, r)
            for r in await self._repo.of_customer(session, tenant, customer_id)
        ]

    # --- customer events ---------------------------------------------------------------------

    async def merged(
        self, session: AsyncSession, tenant: str, merged: str, survivor: str, merge_id: str
    ) -> None:
        """The merged customer's notices become the survivor's (one still owed goes to the
        person under the survivor's contact); logged, so an unmerge gives them back."""
        await self._repo.repoint(session, tenant, merged, survivor, merge_id)

    async def forgotten(self, session: AsyncSession, tenant: str, ids: Sequence[str]) -> None:
        await self._repo.forget(session, tenant, ids)
