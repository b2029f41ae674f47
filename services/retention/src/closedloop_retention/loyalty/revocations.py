"""Every query of reward_revocations, and the one coupon write a clawback needs (coupons are
loyalty's table: this module is part of the loyalty concept)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.models import LoyaltyAccountRow, RewardRevocationRow


class RevocationRepository:
    async def find(
        self, session: AsyncSession, tenant: str, reward_id: str
    ) -> RewardRevocationRow | None:
        return await session.get(RewardRevocationRow, (tenant, reward_id))

    async def add(self, session: AsyncSession, row: RewardRevocationRow) -> None:
        session.add(row)
        await session.flush()

    async def locked_balance(self, session: AsyncSession, tenant: str, customer_id: str) -> int:
        """The balance, with the account row locked until the transaction ends (PostgreSQL;
        SQLite's writers are serial already), so a concurrent redemption cannot slip between
        reading it and taking points back."""
        value = await session.scalar(
            select(LoyaltyAccountRow.balance)
            .where(
                LoyaltyAccountRow.tenant_id == tenant, LoyaltyAccountRow.customer_id == customer_id
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return int(value or 0)

    async def lower_lifetime(
        self, session: AsyncSession, tenant: str, customer_id: str, points: int, at: datetime
    ) -> None:
        """Lifetime points (the tier's base) lose points the balance could not give back."""
        await session.execute(
            update(LoyaltyAccountRow)
            .where(
                LoyaltyAccountRow.tenant_id == tenant, LoyaltyAccountRow.customer_id == customer_id
            )
            .values(lifetime_points=LoyaltyAccountRow.lifetime_points - points, updated_at=at)
            .execution_options(synchronize_session=False)
        )
