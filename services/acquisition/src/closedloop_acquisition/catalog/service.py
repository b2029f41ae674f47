"""Use cases on the catalog: create and read campaigns, channels and landing pages.

The `get_*`, `list_*` and `create_*` use cases hand out views; the `*_row` lookups are for the
other concepts' use cases, which work on rows inside the same unit of work.

Landing pages and channel terms are kept in process once read (the lead-capture hot path then
reads neither): both are written once and never changed; no API updates or removes a page, and
deleting a channel changes nothing of its terms. A use case that ever changes them must drop them
from the cache here (and other processes would need an event to do the same)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop_acquisition.catalog import repository as repo
from closedloop_acquisition.catalog.codes import ChannelCode
from closedloop_acquisition.catalog.specs import (
    EXPIRING_KINDS,
    CampaignSpec,
    ChannelSpec,
    LandingPageSpec,
    Schedule,
)
from closedloop_acquisition.catalog.views import (
    CampaignView,
    ChannelTerms,
    ChannelView,
    LandingPageView,
)
from closedloop_acquisition.models import CampaignRow, ChannelRow, LandingPageRow
from loopkit.errors import AlreadyExists, InvalidArgument, NotFound
from loopkit.views import view_of

MAX_PAGE_SIZE = 100
K = TypeVar("K")
V = TypeVar("V")
# Entries kept per cache; the oldest go first (a page is 1-2 kB).
MAX_CACHED = 10_000


def _page_size(size: int) -> int:
    if size < 0:
        raise InvalidArgument("must not be negative", field="page.page_size")
    return min(size or 50, MAX_PAGE_SIZE)


class CatalogService:
    def __init__(self) -> None:
        self._pages: dict[str, LandingPageView] = {}
        self._terms: dict[tuple[str, str], ChannelTerms] = {}

    async def create_campaign(
        self, session: AsyncSession, tenant_id: str, spec: CampaignSpec, now: datetime
    ) -> CampaignView:
        spec.validate()
        row = CampaignRow(
            id=str(ULID()),
            tenant_id=tenant_id,
            name=spec.name.strip(),
            description=spec.description,
            starts_at=spec.starts_at,
            ends_at=spec.ends_at,
            goal_leads=spec.goal_leads,
            fission_goal=spec.fission_goal,
            fission_reward=spec.fission_reward,
            created_at=now,
        )
        session.add(row)
        await session.flush()
        return view_of(CampaignView, row)

    async def get_campaign(
        self, session: AsyncSession, tenant_id: str, campaign_id: str
    ) -> CampaignView:
        return view_of(CampaignView, await self.campaign_row(session, tenant_id, campaign_id))

    async def campaign_row(
        self, session: AsyncSession, tenant_id: str, campaign_id: str
    ) -> CampaignRow:
        row = await repo.campaign(session, tenant_id, campaign_id)
        if row is None:
            raise NotFound(f"no campaign {campaign_id!r}", field="campaign_id")
        return row

    async def list_campaigns(
        self, session: AsyncSession, tenant_id: str, *, page_token: str, page_size: int
    ) -> tuple[list[CampaignView], str]:
        limit = _page_size(page_size)
        rows = await repo.list_campaigns(session, tenant_id, after=page_token, limit=limit + 1)
        views = [view_of(CampaignView, r) for r in rows[:limit]]
        return views, rows[limit - 1].id if len(rows) > limit else ""

    async def check_channel(
        self, session: AsyncSession, tenant_id: str, spec: ChannelSpec, now: datetime
    ) -> None:
        """Everything that would refuse the channel, checked before WeChat issues its code."""
        spec.validate(now)
        await self.campaign_row(session, tenant_id, spec.campaign_id)
        if spec.scene and await repo.channel_by_scene(session, tenant_id, spec.scene):
            raise AlreadyExists(f"scene {spec.scene!r} is taken by another channel", field="scene")
        if spec.state and await repo.channel_by_state(session, tenant_id, spec.state):
            raise AlreadyExists(f"state {spec.state!r} is taken by another channel", field="state")

    async def create_channel(
        self,
        session: AsyncSession,
        tenant_id: str,
        spec: ChannelSpec,
        now: datetime,
        code: ChannelCode | None = None,
    ) -> ChannelView:
        return view_of(ChannelView, await self.add_channel(session, tenant_id, spec, now, code))

    async def add_channel(
        self,
        session: AsyncSession,
        tenant_id: str,
        spec: ChannelSpec,
        now: datetime,
        code: ChannelCode | None = None,
    ) -> ChannelRow:
        await self.check_channel(session, tenant_id, spec, now)
        code = code or ChannelCode()
        row = ChannelRow(
            id=str(ULID()),
            tenant_id=tenant_id,
            campaign_id=spec.campaign_id,
            name=spec.name.strip(),
            kind=spec.kind,
            scene=spec.scene or None,
            expires_at=spec.expires_at if spec.kind in EXPIRING_KINDS else None,
            state=spec.state or None,
            app_id=spec.app_id,
            url=spec.url,
            parameters=dict(spec.parameters),
            owner_team=spec.owner_team,
            welcome_message=spec.welcome_message,
            expired_reply=spec.expired_reply,
            tags=list(spec.tags),
            schedule=spec.schedule.as_json(),
            daily_cap_per_rep=spec.daily_cap_per_rep,
            cost_currency=spec.cost_currency,
            cost_minor=spec.cost_minor,
            region=spec.region,
            created_at=now,
            corp_id=spec.corp_id or code.corp_id,
            user_ids=list(spec.user_ids),
            skip_verify=spec.skip_verify,
            code_ticket=code.ticket,
            code_url=code.url,
            code_image_url=code.image_url,
            code_config_id=code.config_id,
            code_note=code.note,
            deleted_at=None,
        )
        if not row.app_id and code.app_id:
            row.app_id = code.app_id
        session.add(row)
        await session.flush()
        return row

    async def delete_channel(
        self, session: AsyncSession, tenant_id: str, channel_id: str, now: datetime
    ) -> ChannelView:
        """Marks the channel deleted and expired from now on (its code was released first)."""
        row = await self.channel_row(session, tenant_id, channel_id)
        if row.deleted_at is None:
            row.deleted_at = now
            expires = row.expires_at
            if expires is not None and expires.tzinfo is None:
                expires = expires.replace(tzinfo=UTC)  # SQLite hands back naive datetimes
            if expires is None or expires > now:
                row.expires_at = now
            await session.flush()
        return view_of(ChannelView, row)

    # --- ended contact-me channels (the release worker) ------------------------------------

    async def ended_contact_ways(
        self, session: AsyncSession, now: datetime, limit: int
    ) -> list[tuple[str, str, str, str]]:
        """(tenant, channel, corp, config id) of ended contact-me channels whose code is still
        at WeCom: the channel's expiry or its campaign's end passed (not deleted: deleting
        removes the code itself)."""
        return await repo.ended_contact_ways(session, now, limit)

    async def claim_code_release(
        self, session: AsyncSession, channel_id: str, now: datetime, until: datetime
    ) -> bool:
        return await repo.claim_code_release(session, channel_id, now, until)

    async def end_code_release(
        self, session: AsyncSession, channel_id: str, released_at: datetime | None, note: str
    ) -> None:
        await repo.end_code_release(session, channel_id, released_at, note)

    async def get_channel(
        self, session: AsyncSession, tenant_id: str, channel_id: str
    ) -> ChannelView:
        return view_of(ChannelView, await self.channel_row(session, tenant_id, channel_id))

    async def channel_row(
        self, session: AsyncSession, tenant_id: str, channel_id: str
    ) -> ChannelRow:
        row = await repo.channel(session, tenant_id, channel_id)
        if row is None:
            raise NotFound(f"no channel {channel_id!r}", field="channel_id")
        return row

    async def list_channels(
        self,
        session: AsyncSession,
        tenant_id: str,
        *,
        campaign_id: str,
        page_token: str,
        page_size: int,
    ) -> tuple[list[ChannelView], str]:
        limit = _page_size(page_size)
        rows = await repo.list_channels(
            session, tenant_id, campaign_id=campaign_id, after=page_token, limit=limit + 1
        )
        views = [view_of(ChannelView, r) for r in rows[:limit]]
        return views, rows[limit - 1].id if len(rows) > limit else ""

    async def create_landing_page(
        self, session: AsyncSession, tenant_id: str, spec: LandingPageSpec, now: datetime
    ) -> LandingPageView:
        spec.validate()
        await self.campaign_row(session, tenant_id, spec.campaign_id)
        if spec.channel_id:
            await self.channel_row(session, tenant_id, spec.channel_id)
        row = LandingPageRow(
            id=str(ULID()),
            tenant_id=tenant_id,
            campaign_id=spec.campaign_id,
            channel_id=spec.channel_id or None,
            title=spec.title.strip(),
            fields=[f.as_json() for f in spec.fields],
            created_at=now,
            sign_in=spec.sign_in,
            app_id=spec.app_id,
        )
        session.add(row)
        await session.flush()
        return view_of(LandingPageView, row)

    async def get_landing_page(
        self, session: AsyncSession, tenant_id: str, page_id: str
    ) -> LandingPageView:
        page = self._pages.get(page_id)
        if page is None:
            page = _remember(
                self._pages,
                page_id,
                view_of(LandingPageView, await self.page_row(session, tenant_id, page_id)),
            )
        if page.tenant_id != tenant_id:
            raise NotFound(f"no landing page {page_id!r}", field="page_id")
        return page

    async def public_page(self, session: AsyncSession, page_id: str) -> LandingPageView:
        """A page by its public id alone (its tenant is whoever owns it); NotFound otherwise."""
        tenant = await self.page_tenant(session, page_id)
        return await self.get_landing_page(session, tenant, page_id)

    async def channel_terms(
        self, session: AsyncSession, tenant_id: str, channel_id: str
    ) -> ChannelTerms:
        terms = self._terms.get((tenant_id, channel_id))
        if terms is None:
            row = await self.channel_row(session, tenant_id, channel_id)
            terms = _remember(self._terms, (tenant_id, channel_id), view_of(ChannelTerms, row))
        return terms

    async def page_row(self, session: AsyncSession, tenant_id: str, page_id: str) -> LandingPageRow:
        row = await repo.page(session, tenant_id, page_id)
        if row is None:
            raise NotFound(f"no landing page {page_id!r}", field="page_id")
        return row

    async def channels_of_campaign(
        self, session: AsyncSession, tenant_id: str, campaign_id: str
    ) -> list[ChannelRow]:
        return await repo.channels_of_campaign(session, tenant_id, campaign_id)

    async def channel_by_scene(
        self, session: AsyncSession, tenant_id: str, scene: str
    ) -> ChannelRow | None:
        return await repo.channel_by_scene(session, tenant_id, scene)

    async def page_tenant(self, session: AsyncSession, page_id: str) -> str:
        cached = self._pages.get(page_id)
        if cached is not None:
            return cached.tenant_id
        tenant = await repo.page_tenant(session, page_id)
        if tenant is None:
            raise NotFound(f"no landing page {page_id!r}", field="page_id")
        return tenant

    async def channel_by_state(
        self, session: AsyncSession, tenant_id: str, state: str
    ) -> ChannelRow | None:
        return await repo.channel_by_state(session, tenant_id, state)


def _remember(cache: dict[K, V], key: K, value: V) -> V:
    if len(cache) >= MAX_CACHED:
        cache.pop(next(iter(cache)))
    cache[key] = value
    return value


def out_of_schedule(channel: ChannelRow | ChannelTerms, at: datetime) -> bool:
    """Outside the channel's schedule at `at` (a channel without one is always open)."""
    return not Schedule.of(channel.schedule).is_open(at)


def closed(channel: ChannelRow, at: datetime) -> bool:
    """A scan at `at` earns nothing: the temporary code expired, or the schedule is shut."""
    expires = channel.expires_at
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)  # SQLite hands back naive datetimes
    return (expires is not None and expires <= at) or out_of_schedule(channel, at)
