"""Every query on campaigns, channels and landing pages."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_acquisition.catalog.specs import is_id
from closedloop_acquisition.models import CampaignRow, ChannelRow, LandingPageRow


async def campaign(session: AsyncSession, tenant_id: str, campaign_id: str) -> CampaignRow | None:
    if not is_id(campaign_id):
        return None
    row = await session.get(CampaignRow, campaign_id)
    return row if row is not None and row.tenant_id == tenant_id else None


async def channel(session: AsyncSession, tenant_id: str, channel_id: str) -> ChannelRow | None:
    if not is_id(channel_id):
        return None
    row = await session.get(ChannelRow, channel_id)
    return row if row is not None and row.tenant_id == tenant_id else None


async def page(session: AsyncSession, tenant_id: str, page_id: str) -> LandingPageRow | None:
    if not is_id(page_id):
        return None
    row = await session.get(LandingPageRow, page_id)
    return row if row is not None and row.tenant_id == tenant_id else None


async def channel_by_scene(session: AsyncSession, tenant_id: str, scene: str) -> ChannelRow | None:
    if len(scene) > 64 or "\x00" in scene:
        return None
    result = await session.execute(
        select(ChannelRow).where(ChannelRow.tenant_id == tenant_id, ChannelRow.scene == scene)
    )
    return result.scalar_one_or_none()


async def channel_by_state(session: AsyncSession, tenant_id: str, state: str) -> ChannelRow | None:
    if len(state) > 64 or "\x00" in state:
        return None
    result = await session.execute(
        select(ChannelRow).where(ChannelRow.tenant_id == tenant_id, ChannelRow.state == state)
    )
    return result.scalar_one_or_none()


async def list_campaigns(
    session: AsyncSession, tenant_id: str, *, after: str, limit: int
) -> list[CampaignRow]:
    query = select(CampaignRow).where(CampaignRow.tenant_id == tenant_id, CampaignRow.id > after)
    result = await session.execute(query.order_by(CampaignRow.id).limit(limit))
    return list(result.scalars())


async def list_channels(
    session: AsyncSession, tenant_id: str, *, campaign_id: str, after: str, limit: int
) -> list[ChannelRow]:
    query = select(ChannelRow).where(ChannelRow.tenant_id == tenant_id, ChannelRow.id > after)
    if campaign_id:
        query = query.where(ChannelRow.campaign_id == campaign_id)
    result = await session.execute(query.order_by(ChannelRow.id).limit(limit))
    return list(result.scalars())


async def channels_of_campaign(
    session: AsyncSession, tenant_id: str, campaign_id: str
) -> list[ChannelRow]:
    result = await session.execute(
        select(ChannelRow).where(
            ChannelRow.tenant_id == tenant_id, ChannelRow.campaign_id == campaign_id
        )
    )
    return list(result.scalars())


async def page_tenant(session: AsyncSession, page_id: str) -> str | None:
    """The tenant a landing page belongs to (its id is public: it is in the page's URL)."""
    if not is_id(page_id):
        return None
    row = await session.get(LandingPageRow, page_id)
    return row.tenant_id if row is not None else None
