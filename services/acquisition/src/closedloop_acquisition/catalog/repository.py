"""Every query on campaigns, channels and landing pages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update
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


async def ended_contact_ways(
    session: AsyncSession, now: datetime, limit: int
) -> list[tuple[str, str, str, str]]:
    """(tenant, channel id, corp id, config id) of contact-me channels that ended (their expiry
    or their campaign's end passed, not deleted) whose code is still at WeCom and that no
    replica is removing now."""
    rows = await session.execute(
        select(ChannelRow.tenant_id, ChannelRow.id, ChannelRow.corp_id, ChannelRow.code_config_id)
        .outerjoin(CampaignRow, CampaignRow.id == ChannelRow.campaign_id)
        .where(
            ChannelRow.kind == "wecom_contact_way",
            ChannelRow.code_config_id.is_not(None),
            ChannelRow.code_released_at.is_(None),
            ChannelRow.deleted_at.is_(None),
            or_(ChannelRow.expires_at <= now, CampaignRow.ends_at <= now),
            or_(
                ChannelRow.code_release_lease_until.is_(None),
                ChannelRow.code_release_lease_until < now,
            ),
        )
        .order_by(ChannelRow.id)
        .limit(limit)
    )
    return [(t, i, c, k or "") for t, i, c, k in rows.all()]


async def claim_code_release(
    session: AsyncSession, channel_id: str, now: datetime, until: datetime
) -> bool:
    """Takes the removal of a channel's code until `until` (one conditional UPDATE); False when
    it is released or another replica holds it."""
    result = await session.execute(
        update(ChannelRow)
        .where(
            ChannelRow.id == channel_id,
            ChannelRow.code_released_at.is_(None),
            or_(
                ChannelRow.code_release_lease_until.is_(None),
                ChannelRow.code_release_lease_until < now,
            ),
        )
        .values(code_release_lease_until=until)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


async def end_code_release(
    session: AsyncSession, channel_id: str, released_at: datetime | None, note: str = ""
) -> None:
    """The removal's outcome: released (with the note GetChannel shows), or (None) the lease
    dropped so that the next round tries again."""
    values: dict[str, object] = {"code_release_lease_until": None}
    if released_at is not None:
        values |= {"code_released_at": released_at, "code_note": note}
    await session.execute(
        update(ChannelRow)
        .where(ChannelRow.id == channel_id, ChannelRow.code_released_at.is_(None))
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
