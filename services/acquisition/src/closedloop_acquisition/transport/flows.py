"""The multi-step use cases both transports run: validate, resolve through identity (outside any
transaction), then write rows and events in one unit of work. Metrics count after the commit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop_acquisition import metrics
from closedloop_acquisition.capture.service import (
    CapturedLead,
    CaptureService,
    LeadInput,
    PreparedLead,
    TouchInput,
)
from closedloop_acquisition.catalog.codes import ChannelCodes
from closedloop_acquisition.catalog.service import CatalogService
from closedloop_acquisition.catalog.specs import ChannelSpec
from closedloop_acquisition.fission.service import FissionService, Progress
from closedloop_acquisition.models import ChannelRow, TouchRow
from closedloop_acquisition.pages.signin import WebSession
from loopkit.customers import IdentityValue
from loopkit.db import transact
from loopkit.errors import InvalidArgument

T = TypeVar("T")


class Flows:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        catalog: CatalogService,
        capture: CaptureService,
        fission: FissionService,
        after_commit: Callable[[], None],
        *,
        codes: ChannelCodes | None = None,
    ) -> None:
        self.sessions = sessions
        self.catalog = catalog
        self.capture = capture
        self.fission = fission
        self.codes = codes or ChannelCodes(None)
        self._after_commit = after_commit

    async def tx(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        return await transact(self.sessions, work, after_commit=self._after_commit)

    async def read(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async with self.sessions() as session:
            return await work(session)

    async def record_touch(self, tenant_id: str, request: TouchInput) -> TouchRow:
        self.capture.check_touch(request)
        if request.channel_id:
            await self.read(lambda s: self.catalog.get_channel(s, tenant_id, request.channel_id))
        customer = await self.capture.resolve(tenant_id, request.identities)
        touch = await self.tx(lambda s: self.capture.record_touch(s, tenant_id, request, customer))
        metrics.touch(touch.kind, touch.channel_kind)
        return touch

    async def create_channel(self, tenant_id: str, spec: ChannelSpec) -> ChannelRow:
        """Checks, obtains the channel's code from WeChat (outside any transaction), writes."""
        now = datetime.now(UTC)
        await self.read(lambda s: self.catalog.check_channel(s, tenant_id, spec, now))
        code = await self.codes.obtain(tenant_id, spec, now)
        try:
            return await self.tx(lambda s: self.catalog.create_channel(s, tenant_id, spec, code))
        except Exception:
            await self.codes.discard(tenant_id, code)
            raise

    async def delete_channel(self, tenant_id: str, channel_id: str) -> ChannelRow:
        """Removes the channel's contact-me code at WeCom, then marks it deleted. If WeCom
        cannot be reached the channel stays as it was (UNAVAILABLE); deleting again is safe."""
        channel = await self.read(lambda s: self.catalog.get_channel(s, tenant_id, channel_id))
        if channel.deleted_at is None:
            await self.codes.release(tenant_id, channel)
        now = datetime.now(UTC)
        return await self.tx(lambda s: self.catalog.delete_channel(s, tenant_id, channel_id, now))

    async def capture_lead(
        self, tenant_id: str | None, request: LeadInput, signed_in: WebSession | None = None
    ) -> CapturedLead:
        """`tenant_id` None: the page's tenant (a public form knows only the page id).
        `signed_in`: the browser's WeChat sign-in; its identities count, verified, when it was
        made for the page's tenant, and replace any WeChat ids the browser merely claims."""

        async def prepare(session: AsyncSession) -> tuple[str, PreparedLead | CapturedLead]:
            tenant = tenant_id or await self.catalog.page_tenant(session, request.page_id)
            # A retry of a call that committed: its first answer, without calling identity.
            first = await self.capture.first_answer(session, tenant, request)
            if first is not None:
                return tenant, first
            lead = request
            if signed_in is not None and signed_in.tenant_id == tenant:
                # WeChat's word replaces whatever the browser claims.
                lead = replace(
                    request, identities=signed_in.identities() + request.identities, claims=()
                )
            return tenant, await self.capture.prepare_lead(session, tenant, lead)

        tenant, prepared = await self.read(prepare)
        if isinstance(prepared, CapturedLead):
            return prepared
        customer = await self.capture.resolve_lead(tenant, prepared)
        captured = await self.tx(lambda s: self.capture.capture_lead(s, tenant, prepared, customer))
        metrics.lead(captured.repeat)
        return captured

    async def join_fission(
        self,
        tenant_id: str,
        campaign_id: str,
        identities: tuple[IdentityValue, ...],
        app_id: str,
    ) -> Progress:
        if not identities:
            raise InvalidArgument("who joins: at least one identity", field="identities")
        await self.read(lambda s: self.fission.check_join(s, tenant_id, campaign_id, app_id))
        customer = await self.capture.resolve(tenant_id, identities)
        assert customer is not None
        customer_id = customer.customer_id
        found = await self.read(
            lambda s: self.fission.existing(s, tenant_id, campaign_id, customer_id)
        )
        if found is not None:
            return found
        # The poster's QR code comes from WeChat before the participant is written.
        poster = self.fission.poster(campaign_id, customer_id, app_id)
        code = await self.codes.obtain(tenant_id, poster[1], datetime.now(UTC))
        try:
            return await self.tx(
                lambda s: self.fission.join(
                    s, tenant_id, campaign_id, customer_id, app_id, poster=poster, code=code
                )
            )
        except Exception:
            await self.codes.discard(tenant_id, code)
            raise
