"""The multi-step requests both transports run: validate, resolve through identity or obtain a
code from WeChat (outside any transaction), then write rows and events in one unit of work."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar, cast

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_acquisition.callbacks.service import CallbackService
from closedloop_acquisition.catalog.codes import ChannelCodes
from closedloop_acquisition.catalog.service import CatalogService
from closedloop_acquisition.catalog.specs import ChannelSpec
from closedloop_acquisition.catalog.views import ChannelView
from closedloop_acquisition.clock import now
from closedloop_acquisition.customers.directory import Customers
from closedloop_acquisition.fission.service import FissionService
from closedloop_acquisition.fission.views import Progress
from closedloop_acquisition.leads.service import LeadInput, LeadService, PreparedLead
from closedloop_acquisition.leads.views import CapturedLead
from closedloop_acquisition.pages.signin import WebSession
from closedloop_acquisition.stats.service import StatsService
from closedloop_acquisition.touches.service import TouchInput, TouchService
from closedloop_acquisition.touches.views import TouchView
from loopkit.customers import IdentityValue, ResolvedCustomer
from loopkit.db import reader_sessions
from loopkit.errors import DependencyUnavailable, InvalidArgument
from loopkit.uow import UnitOfWork

T = TypeVar("T")


class _SessionOnDemand:
    """Stands for an AsyncSession, made on the first attribute asked of it."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self.made: AsyncSession | None = None

    def __getattr__(self, name: str) -> Any:
        if self.made is None:
            # A reading session: on SQLite it begins DEFERRED, beside the writer, not behind it.
            self.made = reader_sessions(self._uow.sessions)()
        return getattr(self.made, name)


class Flows:
    def __init__(
        self,
        uow: UnitOfWork,
        *,
        customers: Customers,
        catalog: CatalogService,
        touches: TouchService,
        leads: LeadService,
        stats: StatsService,
        fission: FissionService,
        callbacks: CallbackService,
        codes: ChannelCodes | None = None,
    ) -> None:
        self.uow = uow
        self.customers = customers
        self.catalog = catalog
        self.touches = touches
        self.leads = leads
        self.stats = stats
        self.fission = fission
        self.callbacks = callbacks
        self.codes = codes or ChannelCodes(None)

    async def tx(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        return await self.uow.run(work)

    async def read(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Reads without a transaction of their own to commit (nothing is written). The session
        is made when the work first uses it: a form post to a page the catalog has cached reads
        nothing and makes none (opening and closing one costs ~35 us of CPU)."""
        lazy = _SessionOnDemand(self.uow)
        try:
            return await work(cast(AsyncSession, lazy))
        finally:
            if lazy.made is not None:
                await lazy.made.close()

    async def record_touch(self, tenant_id: str, request: TouchInput) -> TouchView:
        self.touches.check_touch(request)
        if request.channel_id:
            await self.read(lambda s: self.catalog.get_channel(s, tenant_id, request.channel_id))
        customer = await self.customers.resolve(tenant_id, request.identities)
        if request.referrer_customer_id:
            # The referrer's live id: the survivor of a merge, nobody once forgotten.
            referrer = await self.customers.live_referrer(tenant_id, request.referrer_customer_id)
            request = replace(request, referrer_customer_id=referrer)
        at = now()
        touch = await self.tx(
            lambda s: self.touches.record_touch(s, tenant_id, request, customer, at)
        )
        if touch.referrer_customer_id:
            touch = await self._referrer_confirmed(tenant_id, touch)
        return touch

    async def _referrer_confirmed(self, tenant_id: str, touch: TouchView) -> TouchView:
        """Identity asked again after the commit: a merge or forget of the referrer made
        between the first answer and the commit may have been applied here already, past this
        touch; the touch then names the survivor, or nobody. One made after this question is
        applied after the commit and finds the touch. Best effort: identity out, it stays."""
        named = touch.referrer_customer_id or ""
        try:
            live = await self.customers.live_referrer(tenant_id, named)
        except DependencyUnavailable:
            return touch
        if live == named:
            return touch
        return await self.tx(
            lambda s: self.touches.rename_referrer(s, tenant_id, touch.id, named, live)
        )

    async def create_channel(self, tenant_id: str, spec: ChannelSpec) -> ChannelView:
        """Checks, obtains the channel's code from WeChat (outside any transaction), writes."""
        at = now()
        await self.read(lambda s: self.catalog.check_channel(s, tenant_id, spec, at))
        code = await self.codes.obtain(tenant_id, spec, at)
        try:
            return await self.tx(
                lambda s: self.catalog.create_channel(s, tenant_id, spec, now(), code)
            )
        except Exception:
            await self.codes.discard(tenant_id, code)
            raise

    async def delete_channel(self, tenant_id: str, channel_id: str) -> ChannelView:
        """Removes the channel's contact-me code at WeCom, then marks it deleted. If WeCom
        cannot be reached the channel stays as it was (UNAVAILABLE); deleting again is safe."""
        channel = await self.read(lambda s: self.catalog.get_channel(s, tenant_id, channel_id))
        if channel.deleted_at is None:
            await self.codes.release(tenant_id, channel)
        at = now()
        return await self.tx(lambda s: self.catalog.delete_channel(s, tenant_id, channel_id, at))

    async def capture_lead(
        self, tenant_id: str | None, request: LeadInput, signed_in: WebSession | None = None
    ) -> CapturedLead:
        """`tenant_id` None: the page's tenant (a public form knows only the page id).
        `signed_in`: the browser's WeChat sign-in; its identities count, verified, when it was
        made for the page's tenant, and replace any WeChat ids the browser merely claims."""

        async def prepare(session: AsyncSession) -> tuple[str, PreparedLead | CapturedLead]:
            tenant = tenant_id or await self.catalog.page_tenant(session, request.page_id)
            # A retry of a call that committed: its first answer, without calling identity.
            first = await self.leads.first_answer(session, tenant, request)
            if first is not None:
                return tenant, first
            lead = request
            if signed_in is not None and signed_in.tenant_id == tenant:
                # WeChat's word replaces whatever the browser claims.
                lead = replace(
                    request, identities=signed_in.identities() + request.identities, claims=()
                )
            return tenant, await self.leads.prepare_lead(session, tenant, lead, now())

        tenant, prepared = await self.read(prepare)
        if isinstance(prepared, CapturedLead):
            return prepared
        customer = await self.leads.resolve_lead(tenant, prepared)
        return await self.write_lead(tenant, prepared, customer)

    async def write_lead(
        self, tenant: str, prepared: PreparedLead, customer: ResolvedCustomer
    ) -> CapturedLead:
        """The lead of a prepared submission for the customer identity resolved it to."""

        def write(fresh: bool) -> Callable[[AsyncSession], Awaitable[CapturedLead]]:
            return lambda s: self.leads.capture_lead(
                s, tenant, prepared, customer, now(), fresh=fresh
            )

        if customer.created and not prepared.request.request_id:
            # A customer identity just created has no lead or touch to read, and the lead with
            # its event is one statement: no transaction around it (no BEGIN/COMMIT round trips).
            # Should a concurrent submission's lead collide with ours, the transaction below
            # reads them after all.
            try:
                return await self.uow.run(write(True), autocommit=True, retry_races=False)
            except IntegrityError:
                pass
        return await self.tx(write(False))

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
        customer = await self.customers.resolve(tenant_id, identities)
        assert customer is not None
        customer_id = customer.customer_id
        found = await self.read(
            lambda s: self.fission.existing(s, tenant_id, campaign_id, customer_id)
        )
        if found is not None:
            return found
        # The poster's QR code comes from WeChat before the participant is written.
        poster = self.fission.poster(campaign_id, app_id)
        code = await self.codes.obtain(tenant_id, poster[1], now())
        try:
            return await self.tx(
                lambda s: self.fission.join(
                    s,
                    tenant_id,
                    campaign_id,
                    customer_id,
                    app_id,
                    now=now(),
                    poster=poster,
                    code=code,
                )
            )
        except Exception:
            await self.codes.discard(tenant_id, code)
            raise
