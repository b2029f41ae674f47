"""Withdrawing consent (an RPC or the unsubscribe link) and the check every send makes at send
time. Opt-outs are rows of their own, per channel or "all"; a withdrawal of all channels also
clears the activity model's `consent` flag so segments and broadcast planning see it at once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1 import retention_events_pb2 as ev
from closedloop_retention.activity.repository import ActivityRepository
from closedloop_retention.clock import utc
from closedloop_retention.consent import links
from closedloop_retention.consent.repository import ConsentRepository
from closedloop_retention.models import OptOutRow
from loopkit.errors import InvalidArgument, NotFound
from loopkit.events import Outbox

# The channels a customer can opt out of one by one: the contact kinds messages go to.
CHANNELS = ("wechat_openid", "wecom_external_userid", "mini_program_openid")
ALL = "all"


def _channel(channel: str) -> str:
    if channel and channel not in CHANNELS:
        raise InvalidArgument(
            f"must be empty (all) or one of {', '.join(CHANNELS)}", field="channel"
        )
    return channel or ALL


class ConsentService:
    def __init__(
        self,
        outbox: Outbox,
        *,
        secret: bytes,
        public_url: str,
        repository: ConsentRepository | None = None,
        activity_rows: ActivityRepository | None = None,
    ) -> None:
        self._outbox = outbox
        self._secret = secret
        self._public_url = public_url.rstrip("/")
        self._repo = repository or ConsentRepository()
        self._activity = activity_rows or ActivityRepository()

    async def withdraw(
        self,
        session: AsyncSession,
        tenant: str,
        customer_id: str,
        channel: str,
        *,
        source: str,
        now: datetime,
    ) -> bool:
        """Records the opt-out (once; False if it stood already) and publishes consent.withdrawn."""
        if not customer_id:
            raise InvalidArgument("a customer is required", field="customer_id")
        which = _channel(channel)
        if which in await self._repo.opted_out(session, tenant, customer_id):
            return False
        self._repo.add(
            session,
            OptOutRow(
                tenant_id=tenant, customer_id=customer_id, channel=which, source=source, at=utc(now)
            ),
        )
        if which == ALL:
            row = await self._activity.find(session, tenant, customer_id)
            if row is not None:
                row.consent = False
        await self._outbox.emit(
            session,
            "consent.withdrawn",
            tenant_id=tenant,
            customer_id=customer_id,
            payload=ev.ConsentWithdrawn(channel=channel, source=source),
        )
        await session.flush()
        return True

    async def blocked(
        self, session: AsyncSession, tenant: str, customer_id: str, contact_kind: str
    ) -> str:
        """Why the customer may not get a marketing message on `contact_kind` now ("" = they
        may): unknown_customer, unsubscribed, no_consent or opted_out."""
        flags = await self._repo.flags(session, tenant, customer_id)
        if flags is None:
            return "unknown_customer"
        unsubscribed, consent = flags
        if unsubscribed:
            return "unsubscribed"
        if not consent:
            return "no_consent"
        opted = await self._repo.opted_out(session, tenant, customer_id)
        if ALL in opted or contact_kind in opted:
            return "opted_out"
        return ""

    # --- the unsubscribe link ----------------------------------------------------------------

    def link(self, tenant: str, customer_id: str, channel: str = "") -> tuple[str, str]:
        """(url, token) of the customer's unsubscribe link for `channel` ("" = all)."""
        if not customer_id:
            raise InvalidArgument("a customer is required", field="customer_id")
        token = links.sign(self._secret, tenant, customer_id, channel and _channel(channel))
        return f"{self._public_url}/u/{token}", token

    def read_token(self, token: str) -> tuple[str, str, str]:
        """(tenant, customer_id, channel) of a genuine token; NotFound for anything else (a
        forged or damaged link unsubscribes nobody and tells nothing)."""
        try:
            return links.verify(self._secret, token)
        except links.BadToken:
            raise NotFound("no such unsubscribe link", field="token") from None

    async def unsubscribe(
        self, session: AsyncSession, token: str, *, now: datetime
    ) -> tuple[str, str, bool]:
        """The link's customer opted out of its channel: (tenant, channel, newly withdrawn)."""
        tenant, customer_id, channel = self.read_token(token)
        withdrawn = await self.withdraw(
            session, tenant, customer_id, channel, source="link", now=now
        )
        return tenant, channel, withdrawn

    # --- customer events ---------------------------------------------------------------------

    async def merged(
        self, session: AsyncSession, tenant: str, merged: str, survivor: str, merge_id: str
    ) -> None:
        await self._repo.repoint(session, tenant, merged, survivor, merge_id)

    async def forgotten(self, session: AsyncSession, tenant: str, ids: list[str]) -> None:
        await self._repo.forget(session, tenant, ids)
