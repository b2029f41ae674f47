"""Every query of win_back_offers (the table this concept owns)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.models import ActivityRow, WinBackOfferRow
from loopkit.customer_rows import repoint_customer


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


class WinBackRepository:
    async def by_key(self, session: AsyncSession, tenant: str, key: str) -> WinBackOfferRow | None:
        return await session.scalar(
            select(WinBackOfferRow).where(
                WinBackOfferRow.tenant_id == tenant, WinBackOfferRow.idempotency_key == key
            )
        )

    async def get(self, session: AsyncSession, offer_id: str) -> WinBackOfferRow | None:
        return await session.get(WinBackOfferRow, offer_id)

    def add(self, session: AsyncSession, row: WinBackOfferRow) -> None:
        session.add(row)

    async def listed(
        self, session: AsyncSession, tenant: str, customer_id: str, limit: int
    ) -> Sequence[WinBackOfferRow]:
        query = select(WinBackOfferRow).where(WinBackOfferRow.tenant_id == tenant)
        if customer_id:
            query = query.where(WinBackOfferRow.customer_id == customer_id)
        order = (WinBackOfferRow.created_at.desc(), WinBackOfferRow.id.desc())
        return (await session.scalars(query.order_by(*order).limit(limit))).all()

    async def due(
        self, session: AsyncSession, limit: int
    ) -> list[tuple[WinBackOfferRow, str, str, str, datetime | None]]:
        """(offer, contact kind, scope, value, last interaction) of scheduled offers, oldest
        first. Reads the activity table (activity owns it) for where the message goes."""
        rows = await session.execute(
            select(
                WinBackOfferRow,
                ActivityRow.contact_kind,
                ActivityRow.contact_scope,
                ActivityRow.contact_value,
                ActivityRow.last_interaction_at,
            )
            .outerjoin(
                ActivityRow,
                and_(
                    ActivityRow.tenant_id == WinBackOfferRow.tenant_id,
                    ActivityRow.customer_id == WinBackOfferRow.customer_id,
                ),
            )
            .where(WinBackOfferRow.status == "scheduled")
            .order_by(WinBackOfferRow.created_at, WinBackOfferRow.id)
            .limit(limit)
        )
        return [(o, k or "", s or "", v or "", i) for o, k, s, v, i in rows.all()]

    async def set_status(
        self, session: AsyncSession, offer_id: str, *, was: str, **values: object
    ) -> bool:
        """Moves one offer from status `was` (one conditional UPDATE); False if it was not."""
        result = await session.execute(
            update(WinBackOfferRow)
            .where(WinBackOfferRow.id == offer_id, WinBackOfferRow.status == was)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def requeue_claimed_before(self, session: AsyncSession, claimed_before: datetime) -> int:
        result = await session.execute(
            update(WinBackOfferRow)
            .where(WinBackOfferRow.status == "sending", WinBackOfferRow.claimed_at < claimed_before)
            .values(status="scheduled", claimed_at=None)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    async def set_delivery(
        self, session: AsyncSession, tenant: str, offer_id: str, delivery: str, errcode: int
    ) -> bool:
        result = await session.execute(
            update(WinBackOfferRow)
            .where(WinBackOfferRow.tenant_id == tenant, WinBackOfferRow.id == offer_id)
            .values(delivery=delivery, delivery_errcode=errcode)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) > 0

    async def repoint(
        self, session: AsyncSession, tenant: str, merged: str, survivor: str, merge_id: str
    ) -> None:
        columns = [(WinBackOfferRow, "customer_id")]
        await repoint_customer(
            session, columns, tenant_id=tenant, from_id=merged, to_id=survivor, merge_id=merge_id
        )

    async def forget(self, session: AsyncSession, tenant: str, ids: Sequence[str]) -> None:
        await session.execute(
            delete(WinBackOfferRow)
            .where(WinBackOfferRow.tenant_id == tenant, WinBackOfferRow.customer_id.in_(list(ids)))
            .execution_options(synchronize_session=False)
        )
