"""Win-back offers: recorded with their coupon (and win_back.offered, from which conversion makes
the owner rep's task), then sent to the customer by the dispatcher, with consent checked again at
send time, and their delivery outcome followed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop.events.v1 import retention_events_pb2 as ev
from closedloop_retention.clock import utc, utc_or_none
from closedloop_retention.consent.service import ConsentService
from closedloop_retention.loyalty.views import CouponView
from closedloop_retention.models import WinBackOfferRow
from closedloop_retention.winback.repository import WinBackRepository
from closedloop_retention.winback.views import DueOffer, WinBackView
from loopkit.errors import InvalidArgument
from loopkit.events import Outbox
from loopkit.timestamps import ts
from loopkit.views import view_of


class WinBackService:
    def __init__(
        self,
        outbox: Outbox,
        consent: ConsentService,
        repository: WinBackRepository | None = None,
    ) -> None:
        self._outbox = outbox
        self._consent = consent
        self._repo = repository or WinBackRepository()

    async def offer(
        self,
        session: AsyncSession,
        tenant: str,
        customer_id: str,
        *,
        coupon: CouponView,
        owner_rep_id: str,
        attempt: int,
        key: str,
        now: datetime,
    ) -> WinBackView:
        """Records the offer (once per key) and publishes win_back.offered."""
        existing = await self._repo.by_key(session, tenant, key)
        if existing is not None:
            return view_of(WinBackView, existing)
        row = WinBackOfferRow(
            id=str(ULID()),
            tenant_id=tenant,
            customer_id=customer_id,
            idempotency_key=key,
            coupon_id=coupon.id,
            value_minor=coupon.value_minor,
            valid_until=utc(coupon.expires_at),
            owner_rep_id=owner_rep_id,
            attempt=attempt,
            status="scheduled",
            reason="",
            created_at=utc(now),
            claimed_at=None,
            sent_at=None,
            message_id="",
            delivery="",
            delivery_errcode=0,
        )
        self._repo.add(session, row)
        await self._outbox.emit(
            session,
            "win_back.offered",
            tenant_id=tenant,
            customer_id=customer_id,
            payload=ev.WinBackOffered(
                win_back_id=row.id,
                coupon_id=coupon.id,
                value_minor=coupon.value_minor,
                valid_until=ts(row.valid_until),
                owner_rep_id=owner_rep_id,
                attempt=attempt,
            ),
        )
        await session.flush()
        return view_of(WinBackView, row)

    async def listed(
        self, session: AsyncSession, tenant: str, customer_id: str, limit: int
    ) -> list[WinBackView]:
        if limit < 0 or limit > 1000:
            raise InvalidArgument("must be within 0..1000", field="limit")
        rows = await self._repo.listed(session, tenant, customer_id, limit or 100)
        return [view_of(WinBackView, r) for r in rows]

    # --- sending -----------------------------------------------------------------------------

    async def due(self, session: AsyncSession, limit: int) -> list[DueOffer]:
        rows = await self._repo.due(session, limit)
        return [
            DueOffer(view_of(WinBackView, o), k, s, v, utc_or_none(i)) for o, k, s, v, i in rows
        ]

    async def claim(self, session: AsyncSession, due: DueOffer, now: datetime) -> bool:
        """Takes a scheduled offer for sending (one dispatcher wins across replicas). Consent,
        unsubscribe and opt-outs are checked here, at send time: a customer who withdrew after
        the offer was made is skipped with the reason, never messaged."""
        offer = due.offer
        blocked = await self._consent.blocked(
            session, offer.tenant_id, offer.customer_id, due.contact_kind
        )
        if not blocked and not due.contact_value:
            blocked = "no_contact"
        if blocked:
            await self._repo.set_status(
                session, offer.id, was="scheduled", status="skipped", reason=blocked
            )
            return False
        return await self._repo.set_status(
            session, offer.id, was="scheduled", status="sending", claimed_at=utc(now)
        )

    async def skip(self, session: AsyncSession, offer_id: str, reason: str) -> None:
        """A claimed offer that cannot go out (WeChat's 48-hour window closed, no template)."""
        await self._repo.set_status(
            session, offer_id, was="sending", status="skipped", reason=reason
        )

    async def unclaim(self, session: AsyncSession, offer_id: str) -> None:
        await self._repo.set_status(
            session, offer_id, was="sending", status="scheduled", claimed_at=None
        )

    async def requeue_stale(self, session: AsyncSession, claimed_before: datetime) -> int:
        """Offers claimed by a dispatcher that died before marking them go back in the queue (the
        send's idempotency key, the offer's id, keeps the retry from sending twice)."""
        return await self._repo.requeue_claimed_before(session, utc(claimed_before))

    async def mark(
        self,
        session: AsyncSession,
        offer_id: str,
        *,
        message_id: str,
        sent_at: datetime | None,
        failure: str = "",
    ) -> None:
        await self._repo.set_status(
            session,
            offer_id,
            was="sending",
            status="failed" if failure else "sent",
            reason=failure,
            message_id=message_id,
            sent_at=utc(sent_at) if sent_at else None,
        )

    async def delivered(
        self, session: AsyncSession, tenant: str, offer_id: str, *, ok: bool, errcode: int
    ) -> bool:
        """The gateway's outcome of an offer's message (idempotent); False for no such offer."""
        return await self._repo.set_delivery(
            session, tenant, offer_id, "delivered" if ok else "failed", errcode
        )

    # --- customer events ---------------------------------------------------------------------

    async def merged(
        self, session: AsyncSession, tenant: str, merged: str, survivor: str, merge_id: str
    ) -> None:
        await self._repo.repoint(session, tenant, merged, survivor, merge_id)

    async def forgotten(self, session: AsyncSession, tenant: str, ids: list[str]) -> None:
        await self._repo.forget(session, tenant, ids)
