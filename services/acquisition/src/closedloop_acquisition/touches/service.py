"""Use cases on touches. Callers own the unit of work; nothing here commits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop.events.v1 import acquisition_events_pb2 as ev
from closedloop_acquisition import metrics
from closedloop_acquisition.catalog.service import CatalogService, closed
from closedloop_acquisition.catalog.specs import text
from closedloop_acquisition.customers.directory import Customers
from closedloop_acquisition.inputs import (
    check_identities,
    check_parameters,
    identity_json,
    identity_pb,
)
from closedloop_acquisition.leads.service import LeadService
from closedloop_acquisition.models import ChannelRow, TouchRow
from closedloop_acquisition.touches import repository as repo
from closedloop_acquisition.touches.views import TouchView
from loopkit.customers import IdentityValue, ResolvedCustomer
from loopkit.errors import InvalidArgument
from loopkit.events import Outbox
from loopkit.uow import on_commit
from loopkit.views import view_of

TOUCH_KINDS = ("exposure", "click", "scan", "subscribe", "friend_add", "visit", "unsubscribe")


@dataclass(frozen=True)
class TouchInput:
    kind: str
    channel_id: str = ""
    identities: tuple[IdentityValue, ...] = ()
    referral_code: str = ""
    referrer_customer_id: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class ShareVisit:
    """A share link opened (referral's `share_visited`)."""

    channel_id: str
    visitor: tuple[IdentityValue, ...]
    customer_id: str
    code: str
    referrer_customer_id: str
    program_id: str
    share_id: str
    at: datetime


@dataclass(frozen=True)
class FriendAdd:
    """A WeCom friend-add (conversion's `ownership.started`)."""

    channel_id: str
    state: str
    contact: tuple[IdentityValue, ...]
    customer_id: str
    rep_id: str
    at: datetime


class TouchService:
    def __init__(
        self,
        outbox: Outbox,
        catalog: CatalogService,
        customers: Customers,
        leads: LeadService,
    ) -> None:
        self._outbox = outbox
        self._catalog = catalog
        self._customers = customers
        self._leads = leads

    def check_touch(self, request: TouchInput) -> None:
        if request.kind not in TOUCH_KINDS:
            raise InvalidArgument(f"must be one of {', '.join(TOUCH_KINDS)}", field="kind")
        check_identities(request.identities)
        check_parameters(request.parameters)
        text(request.referral_code, "referral_code", max_length=64)
        text(request.referrer_customer_id, "referrer_customer_id", max_length=26)

    async def record_touch(
        self,
        session: AsyncSession,
        tenant_id: str,
        request: TouchInput,
        customer: ResolvedCustomer | None,
        now: datetime,
    ) -> TouchView:
        """A touch on the request's channel (NotFound if unknown) or on none (organic)."""
        self.check_touch(request)
        channel = None
        if request.channel_id:
            channel = await self._catalog.channel_row(session, tenant_id, request.channel_id)
        row = await self.add_touch(
            session,
            tenant_id,
            channel,
            request.kind,
            identities=request.identities,
            customer_id=customer.customer_id if customer else "",
            referral_code=request.referral_code,
            referrer_customer_id=request.referrer_customer_id,
            parameters=request.parameters,
            at=request.occurred_at or now,
        )
        return view_of(TouchView, row)

    async def rename_referrer(
        self, session: AsyncSession, tenant_id: str, touch_id: str, named: str, live: str
    ) -> TouchView:
        """The touch names `live` (a survivor, or "" for nobody) where it still names `named`."""
        row = await repo.rename_referrer(session, tenant_id, touch_id, named, live)
        return view_of(TouchView, row)

    async def share_visited(self, session: AsyncSession, tenant_id: str, visit: ShareVisit) -> None:
        """A VISIT touch on the program's referral channel, carrying the referrer, so the
        visitor's later lead is credited to them (and an earlier one, see `credit_late_visit`).
        A referrer identity no longer knows (forgotten before the event reached us) is named
        by no touch and credited nothing."""
        channel = await self._catalog.channel_row(session, tenant_id, visit.channel_id)
        if channel.kind != "referral":
            raise InvalidArgument(
                f"channel {channel.id} is not a referral channel", field="channel_id"
            )
        customer_id = visit.customer_id
        if not customer_id and visit.visitor:
            # Inside the consumer's transaction: an unreachable identity is retried.
            resolved = await self._customers.resolve(tenant_id, visit.visitor)
            customer_id = resolved.customer_id if resolved else ""
        # Held until commit: a forget of the referrer processed meanwhile waits for this touch.
        await repo.hold_referrer(session, tenant_id, visit.referrer_customer_id)
        referrer = await self._customers.live_referrer(tenant_id, visit.referrer_customer_id)
        parameters = {"program_id": visit.program_id, "share_id": visit.share_id}
        await self.add_touch(
            session,
            tenant_id,
            channel,
            "visit",
            identities=visit.visitor,
            customer_id=customer_id,
            referral_code=visit.code,
            referrer_customer_id=referrer,
            parameters={k: v for k, v in parameters.items() if v},
            at=visit.at,
        )
        await self._leads.credit_late_visit(session, tenant_id, customer_id, visit.code, referrer)

    async def friend_added(self, session: AsyncSession, tenant_id: str, add: FriendAdd) -> None:
        """A FRIEND_ADD touch on the contact-me code's channel (named by conversion, else found
        by the code's state), or on none for a friend added otherwise."""
        channel = None
        if add.channel_id:
            channel = await self._catalog.channel_row(session, tenant_id, add.channel_id)
        elif add.state:
            channel = await self._catalog.channel_by_state(session, tenant_id, add.state)
        await self.add_touch(
            session,
            tenant_id,
            channel,
            "friend_add",
            identities=add.contact,
            customer_id=add.customer_id,
            parameters={"rep_id": add.rep_id} if add.rep_id else {},
            at=add.at,
        )

    async def add_touch(
        self,
        session: AsyncSession,
        tenant_id: str,
        channel: ChannelRow | None,
        kind: str,
        *,
        identities: Sequence[IdentityValue],
        customer_id: str,
        at: datetime,
        referral_code: str = "",
        referrer_customer_id: str = "",
        parameters: Mapping[str, str] | None = None,
    ) -> TouchRow:
        # Expired codes and scans outside the schedule are kept for the stats, credited nothing.
        expired = channel is not None and closed(channel, at)
        params = {**(channel.parameters if channel else {}), **(parameters or {})}
        row = TouchRow(
            id=str(ULID()),
            tenant_id=tenant_id,
            channel_id=channel.id if channel else None,
            campaign_id=channel.campaign_id if channel else None,
            channel_kind=channel.kind if channel else "",
            kind=kind,
            customer_id=customer_id or None,
            expired=expired,
            identities=[identity_json(i) for i in identities],
            referrer_customer_id=referrer_customer_id or None,
            referral_code=referral_code or None,
            parameters=params,
            occurred_at=at,
        )
        await repo.add(session, row)
        await self._outbox.emit(
            session,
            "touch.recorded",
            tenant_id=tenant_id,
            customer_id=customer_id,
            payload=ev.TouchRecorded(
                touch_id=row.id,
                kind=f"TOUCH_KIND_{kind.upper()}",
                channel_id=row.channel_id or "",
                campaign_id=row.campaign_id or "",
                channel_kind=row.channel_kind,
                identities=[identity_pb(i) for i in identities],
                referrer_customer_id=referrer_customer_id,
                referral_code=referral_code,
                parameters=params,
                expired=expired,
            ),
        )
        channel_kind = row.channel_kind
        on_commit(session, lambda: metrics.touch(kind, channel_kind))
        return row
