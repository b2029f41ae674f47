"""Channel and campaign statistics: touches by kind, leads, unique customers, cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_acquisition.catalog.costs import cost_in_range, stopped_at
from closedloop_acquisition.catalog.service import CatalogService
from closedloop_acquisition.stats import repository as repo
from loopkit.errors import InvalidArgument
from loopkit.timestamps import now as _now


@dataclass(frozen=True)
class Stats:
    touches: dict[str, int]
    leads: int
    repeat_submissions: int
    unique_customers: int
    cost_currency: str
    cost_minor: int
    # {YYYY-MM-DD: {touch kind or "lead": n}} when asked for by day.
    days: dict[str, dict[str, int]] = field(default_factory=dict)


class StatsService:
    def __init__(self, catalog: CatalogService) -> None:
        self._catalog = catalog

    async def stats(
        self,
        session: AsyncSession,
        tenant_id: str,
        *,
        channel_id: str,
        campaign_id: str,
        since: datetime | None,
        until: datetime | None,
        by_day: bool = False,
        now: datetime | None = None,
    ) -> Stats:
        """A range's cost is its share of each channel's cost, spread evenly over the channel's
        life (catalog/costs.py); `now` ends the life of a channel still running."""
        if bool(channel_id) == bool(campaign_id):
            raise InvalidArgument("name a channel_id or a campaign_id", field="channel_id")
        if since and until and until <= since:
            raise InvalidArgument("must be after from", field="to")
        if channel_id:
            channels = [await self._catalog.channel_row(session, tenant_id, channel_id)]
        else:
            await self._catalog.campaign_row(session, tenant_id, campaign_id)
            channels = await self._catalog.channels_of_campaign(session, tenant_id, campaign_id)
        ids = [c.id for c in channels]
        touches = await repo.touch_counts(session, tenant_id, ids, since, until)
        leads, repeats = await repo.lead_counts(session, tenant_id, ids, since, until)
        unique = await repo.unique_customers(session, tenant_id, ids, since, until)
        currencies = {c.cost_currency for c in channels if c.cost_minor}
        if len(currencies) > 1:
            raise InvalidArgument(
                "the channels' costs are in several currencies", field="campaign_id"
            )
        return Stats(
            touches=touches,
            leads=leads,
            repeat_submissions=repeats,
            unique_customers=unique,
            cost_currency=currencies.pop() if currencies else "CNY",
            cost_minor=sum(
                cost_in_range(
                    c.cost_minor,
                    c.created_at,
                    stopped_at(c.expires_at, c.deleted_at),
                    since,
                    until,
                    now or _now(),
                )
                for c in channels
            ),
            days=await repo.daily_counts(session, tenant_id, ids, since, until) if by_day else {},
        )
