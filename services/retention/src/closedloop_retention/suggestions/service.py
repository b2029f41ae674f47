"""Products bought by similar customers (those who bought one of this customer's products)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.activity.service import ActivityService
from closedloop_retention.models import OrderItemRow

_I = OrderItemRow


@dataclass(frozen=True)
class Suggestion:
    sku: str
    name: str
    category: str
    co_buyers: int


@dataclass(frozen=True)
class Suggestions:
    owner_rep_id: str
    items: list[Suggestion]


class SuggestionService:
    def __init__(self, activity: ActivityService) -> None:
        self._activity = activity

    async def suggest(
        self, session: AsyncSession, tenant: str, customer_id: str, limit: int
    ) -> Suggestions:
        """What to offer a known customer, and the rep who owns them (who would offer it)."""
        row = await self._activity.get(session, tenant, customer_id)
        return Suggestions(
            row.owner_rep_id, await for_customer(session, tenant, customer_id, limit)
        )


async def for_customer(
    session: AsyncSession, tenant: str, customer_id: str, limit: int
) -> list[Suggestion]:
    """One query: the customer's products → their co-buyers → what else those bought, ranked by
    how many co-buyers bought it; what the customer already has is left out."""
    mine = select(_I.sku).where(_I.tenant_id == tenant, _I.customer_id == customer_id)
    peers = select(_I.customer_id).where(
        _I.tenant_id == tenant, _I.sku.in_(mine), _I.customer_id != customer_id
    )
    buyers = func.count(func.distinct(_I.customer_id)).label("co_buyers")
    rows = (
        await session.execute(
            select(_I.sku, func.max(_I.name), func.max(_I.category), buyers)
            .where(_I.tenant_id == tenant, _I.customer_id.in_(peers), _I.sku.not_in(mine))
            .group_by(_I.sku)
            .order_by(buyers.desc(), _I.sku)
            .limit(limit)
        )
    ).all()
    return [Suggestion(sku, name or "", category or "", int(n)) for sku, name, category, n in rows]
