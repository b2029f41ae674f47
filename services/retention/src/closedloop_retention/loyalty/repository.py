"""Every query of loyalty accounts, the points ledger and coupons (the tables it owns)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.models import CouponRow, LedgerRow, LoyaltyAccountRow
from loopkit.customer_rows import repoint_customer


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


class LoyaltyRepository:
    # --- accounts ----------------------------------------------------------------------------

    async def account(
        self, session: AsyncSession, tenant: str, customer_id: str
    ) -> LoyaltyAccountRow | None:
        return await session.get(LoyaltyAccountRow, (tenant, customer_id))

    async def add(
        self, session: AsyncSession, row: LoyaltyAccountRow | LedgerRow | CouponRow
    ) -> None:
        session.add(row)
        await session.flush()

    async def balance(self, session: AsyncSession, tenant: str, customer_id: str) -> int:
        """The balance as stored now (not a cached row's)."""
        value = await session.scalar(
            select(LoyaltyAccountRow.balance)
            .where(
                LoyaltyAccountRow.tenant_id == tenant, LoyaltyAccountRow.customer_id == customer_id
            )
            .execution_options(populate_existing=True)
        )
        return int(value or 0)

    async def move(
        self,
        session: AsyncSession,
        tenant: str,
        customer_id: str,
        points: int,
        *,
        lifetime: int,
        at: datetime,
        floor_at_zero: bool,
    ) -> bool:
        """Adds `points` to the balance in one conditional UPDATE; with `floor_at_zero` a debit
        that would go below zero changes nothing and answers False."""
        stmt = (
            update(LoyaltyAccountRow)
            .where(
                LoyaltyAccountRow.tenant_id == tenant, LoyaltyAccountRow.customer_id == customer_id
            )
            .values(
                balance=LoyaltyAccountRow.balance + points,
                lifetime_points=LoyaltyAccountRow.lifetime_points + lifetime,
                updated_at=at,
            )
        )
        if floor_at_zero:
            stmt = stmt.where(LoyaltyAccountRow.balance + points >= 0)
        result = await session.execute(stmt.execution_options(synchronize_session=False))
        return _rowcount(result) > 0

    # --- the ledger --------------------------------------------------------------------------

    async def ledger(
        self, session: AsyncSession, tenant: str, customer_id: str, limit: int
    ) -> list[LedgerRow]:
        result = await session.scalars(
            select(LedgerRow)
            .where(LedgerRow.tenant_id == tenant, LedgerRow.customer_id == customer_id)
            .order_by(LedgerRow.created_at.desc(), LedgerRow.id.desc())
            .limit(limit)
        )
        return list(result)

    async def entry_by_key(self, session: AsyncSession, tenant: str, key: str) -> LedgerRow | None:
        return await session.scalar(
            select(LedgerRow).where(LedgerRow.tenant_id == tenant, LedgerRow.idempotency_key == key)
        )

    async def refunded_points(self, session: AsyncSession, tenant: str, order_id: str) -> int:
        """The points taken back so far for refunds of the order (a positive number)."""
        value = await session.scalar(
            select(func.coalesce(func.sum(LedgerRow.points), 0)).where(
                LedgerRow.tenant_id == tenant,
                LedgerRow.source == "refund",
                LedgerRow.source_ref == order_id,
            )
        )
        return -int(value or 0)

    # --- coupons -----------------------------------------------------------------------------

    async def coupon_by_key(self, session: AsyncSession, tenant: str, key: str) -> CouponRow | None:
        return await session.scalar(
            select(CouponRow).where(CouponRow.tenant_id == tenant, CouponRow.idempotency_key == key)
        )

    async def redeem(
        self, session: AsyncSession, tenant: str, coupon_id: str, at: datetime
    ) -> bool:
        """Marks the coupon redeemed if it is neither redeemed, expired nor revoked (one
        UPDATE)."""
        result = await session.execute(
            update(CouponRow)
            .where(
                CouponRow.tenant_id == tenant,
                CouponRow.id == coupon_id,
                CouponRow.redeemed_at.is_(None),
                CouponRow.revoked_at.is_(None),
                CouponRow.expires_at > at,
            )
            .values(redeemed_at=at)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) > 0

    async def revoke_coupon(
        self, session: AsyncSession, tenant: str, coupon_id: str, at: datetime
    ) -> bool:
        """Disables the coupon unless it was redeemed already (one UPDATE, so a redemption
        racing it either wins or finds it revoked)."""
        result = await session.execute(
            update(CouponRow)
            .where(
                CouponRow.tenant_id == tenant,
                CouponRow.id == coupon_id,
                CouponRow.redeemed_at.is_(None),
                CouponRow.revoked_at.is_(None),
            )
            .values(revoked_at=at)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) > 0

    async def coupon(self, session: AsyncSession, tenant: str, coupon_id: str) -> CouponRow | None:
        """The coupon as stored now."""
        return await session.scalar(
            select(CouponRow)
            .where(CouponRow.tenant_id == tenant, CouponRow.id == coupon_id)
            .execution_options(populate_existing=True)
        )

    async def coupons(
        self, session: AsyncSession, tenant: str, customer_id: str
    ) -> list[CouponRow]:
        result = await session.scalars(
            select(CouponRow)
            .where(CouponRow.tenant_id == tenant, CouponRow.customer_id == customer_id)
            .order_by(CouponRow.issued_at.desc())
        )
        return list(result)

    # --- customer events ---------------------------------------------------------------------

    async def drop(self, session: AsyncSession, row: LoyaltyAccountRow) -> None:
        await session.delete(row)

    async def repoint(
        self, session: AsyncSession, tenant: str, merged: str, survivor: str, merge_id: str
    ) -> None:
        """The merged customer's ledger entries and coupons become the survivor's."""
        columns = [(LedgerRow, "customer_id"), (CouponRow, "customer_id")]
        await repoint_customer(
            session, columns, tenant_id=tenant, from_id=merged, to_id=survivor, merge_id=merge_id
        )

    async def rebuild(
        self,
        session: AsyncSession,
        tenant: str,
        customer_id: str,
        earning: Collection[str],
        *,
        at: datetime,
    ) -> None:
        """The account's balance and lifetime points (those of `earning` sources) summed again
        from its ledger (after an unmerge took entries back): each side's tier follows its own."""
        earned = LedgerRow.source.in_(sorted(earning))
        balance, lifetime = (
            await session.execute(
                select(
                    func.coalesce(func.sum(LedgerRow.points), 0),
                    func.coalesce(func.sum(LedgerRow.points).filter(earned), 0),
                ).where(LedgerRow.tenant_id == tenant, LedgerRow.customer_id == customer_id)
            )
        ).one()
        result = await session.execute(
            update(LoyaltyAccountRow)
            .where(
                LoyaltyAccountRow.tenant_id == tenant, LoyaltyAccountRow.customer_id == customer_id
            )
            .values(balance=int(balance), lifetime_points=int(lifetime), updated_at=at)
            .execution_options(synchronize_session=False)
        )
        has_entries = await session.scalar(
            select(func.count())
            .select_from(LedgerRow)
            .where(LedgerRow.tenant_id == tenant, LedgerRow.customer_id == customer_id)
        )
        if _rowcount(result) == 0 and has_entries:
            # The account went back with the restored customer; entries made since stay here.
            session.add(
                LoyaltyAccountRow(
                    tenant_id=tenant,
                    customer_id=customer_id,
                    balance=int(balance),
                    lifetime_points=int(lifetime),
                    updated_at=at,
                )
            )
            await session.flush()

    async def forget(self, session: AsyncSession, tenant: str, ids: list[str]) -> None:
        for model in (LedgerRow, LoyaltyAccountRow, CouponRow):
            await session.execute(
                delete(model)
                .where(model.tenant_id == tenant, model.customer_id.in_(ids))
                .execution_options(synchronize_session=False)
            )
