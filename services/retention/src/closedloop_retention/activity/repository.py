"""Every query of the activity model: customers' activity rows, their orders and products, tags
and stage changes (the tables this concept owns)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.models import ActivityRow, OrderItemRow, OrderRow, StageChangeRow, TagRow
from loopkit.customer_rows import repoint_customer

# The tables keyed by (tenant, customer) this concept owns, besides the activity row itself.
_CUSTOMER_TABLES = (OrderRow, OrderItemRow, StageChangeRow, TagRow)


class ActivityRepository:
    async def find(
        self, session: AsyncSession, tenant: str, customer_id: str
    ) -> ActivityRow | None:
        return await session.get(ActivityRow, (tenant, customer_id))

    async def add(self, session: AsyncSession, row: ActivityRow) -> None:
        session.add(row)
        await session.flush()

    async def tenants(self, session: AsyncSession) -> list[str]:
        """Every tenant with a customer (the sweep's list)."""
        return list(await session.scalars(select(ActivityRow.tenant_id).distinct()))

    async def due_for_review(
        self,
        session: AsyncSession,
        tenant: str,
        now: datetime,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[ActivityRow]:
        """The next keyset batch of customers whose review moment has come."""
        query = select(ActivityRow).where(
            ActivityRow.tenant_id == tenant, ActivityRow.next_review_at <= now
        )
        if after is not None:
            query = query.where(
                or_(
                    ActivityRow.next_review_at > after[0],
                    and_(
                        ActivityRow.next_review_at == after[0],
                        ActivityRow.customer_id > after[1],
                    ),
                )
            )
        return list(
            await session.scalars(
                query.order_by(ActivityRow.next_review_at, ActivityRow.customer_id).limit(limit)
            )
        )

    async def review_all(self, session: AsyncSession, tenant: str, at: datetime) -> None:
        await session.execute(
            update(ActivityRow)
            .where(ActivityRow.tenant_id == tenant)
            .values(next_review_at=at)
            .execution_options(synchronize_session=False)
        )

    # --- tags --------------------------------------------------------------------------------

    async def tags(self, session: AsyncSession, tenant: str, customer_id: str) -> list[str]:
        result = await session.scalars(
            select(TagRow.tag)
            .where(TagRow.tenant_id == tenant, TagRow.customer_id == customer_id)
            .order_by(TagRow.tag)
        )
        return list(result)

    def add_tag(
        self, session: AsyncSession, tenant: str, customer_id: str, tag: str, source: str
    ) -> None:
        session.add(TagRow(tenant_id=tenant, customer_id=customer_id, tag=tag, source=source))

    async def remove_tags(
        self, session: AsyncSession, tenant: str, customer_id: str, tags: Sequence[str]
    ) -> None:
        await session.execute(
            delete(TagRow).where(
                TagRow.tenant_id == tenant,
                TagRow.customer_id == customer_id,
                TagRow.tag.in_(list(tags)),
            )
        )

    # --- stage changes -----------------------------------------------------------------------

    def add_change(self, session: AsyncSession, row: StageChangeRow) -> None:
        session.add(row)

    async def history(
        self, session: AsyncSession, tenant: str, customer_id: str
    ) -> list[StageChangeRow]:
        result = await session.scalars(
            select(StageChangeRow)
            .where(StageChangeRow.tenant_id == tenant, StageChangeRow.customer_id == customer_id)
            .order_by(StageChangeRow.at, StageChangeRow.id)
        )
        return list(result)

    # --- orders ------------------------------------------------------------------------------

    async def order(self, session: AsyncSession, tenant: str, order_id: str) -> OrderRow | None:
        return await session.get(OrderRow, (tenant, order_id))

    def add_order(
        self, session: AsyncSession, order: OrderRow, items: Sequence[OrderItemRow]
    ) -> None:
        session.add(order)
        for item in items:
            session.add(item)

    async def drop_items(self, session: AsyncSession, tenant: str, order_id: str) -> None:
        """A fully refunded order's products no longer count for suggestions."""
        await session.execute(
            delete(OrderItemRow).where(
                OrderItemRow.tenant_id == tenant, OrderItemRow.order_id == order_id
            )
        )

    async def order_span(
        self, session: AsyncSession, tenant: str, customer_id: str
    ) -> tuple[datetime | None, datetime | None]:
        """(first, last) payment time of the customer's orders not fully refunded."""
        first, last = (
            await session.execute(
                select(func.min(OrderRow.paid_at), func.max(OrderRow.paid_at)).where(
                    OrderRow.tenant_id == tenant,
                    OrderRow.customer_id == customer_id,
                    OrderRow.fully_refunded.is_(False),
                )
            )
        ).one()
        return first, last

    # --- customer events ---------------------------------------------------------------------

    async def drop(self, session: AsyncSession, row: ActivityRow) -> None:
        await session.delete(row)

    async def repoint(self, session: AsyncSession, tenant: str, merged: str, survivor: str) -> None:
        """The merged customer's orders, products, stage changes and tags become the survivor's
        (a tag both had is kept once)."""
        keep_tags = select(TagRow.tag).where(
            TagRow.tenant_id == tenant, TagRow.customer_id == survivor
        )
        await session.execute(
            delete(TagRow).where(
                TagRow.tenant_id == tenant, TagRow.customer_id == merged, TagRow.tag.in_(keep_tags)
            )
        )
        columns = [(model, "customer_id") for model in _CUSTOMER_TABLES]
        await repoint_customer(session, columns, tenant_id=tenant, from_id=merged, to_id=survivor)

    async def forget(self, session: AsyncSession, tenant: str, ids: list[str]) -> None:
        for model in (ActivityRow, *_CUSTOMER_TABLES):
            await session.execute(
                delete(model)
                .where(model.tenant_id == tenant, model.customer_id.in_(ids))
                .execution_options(synchronize_session=False)
            )
