"""Every query of rewards (the table this concept owns)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_referral.models import ProgramRow, ReferralRow, RewardRow
from loopkit.customer_rows import repoint_customer


class RewardRepository:
    async def of_referral(self, session: AsyncSession, referral: ReferralRow) -> list[RewardRow]:
        return list(
            await session.scalars(
                select(RewardRow)
                .where(
                    RewardRow.tenant_id == referral.tenant_id, RewardRow.referral_id == referral.id
                )
                .order_by(RewardRow.level)
            )
        )

    async def exists(self, session: AsyncSession, referral: ReferralRow, level: int) -> bool:
        found = await session.scalar(
            select(RewardRow.id).where(
                RewardRow.tenant_id == referral.tenant_id,
                RewardRow.referral_id == referral.id,
                RewardRow.level == level,
            )
        )
        return found is not None

    async def referrer_rewards_since(
        self, session: AsyncSession, program: ProgramRow, referrer: str, since: datetime
    ) -> int:
        """Level-1 rewards of the referrer in the program, pending or granted, since `since`."""
        count = await session.scalar(
            select(func.count())
            .select_from(RewardRow)
            .where(
                RewardRow.tenant_id == program.tenant_id,
                RewardRow.program_id == program.id,
                RewardRow.beneficiary_id == referrer,
                RewardRow.level == 1,
                RewardRow.status.in_(("pending", "approved", "granted")),
                RewardRow.created_at >= since,
            )
        )
        return int(count or 0)

    async def add(self, session: AsyncSession, row: RewardRow) -> None:
        session.add(row)
        await session.flush()

    async def due(
        self, session: AsyncSession, tenant_id: str | None, as_of: datetime, limit: int
    ) -> list[tuple[RewardRow, ReferralRow]]:
        """Pending rewards whose hold ended by `as_of`, of approved referrals, oldest hold first.

        The one read joining the referrals table: the limit must apply to grantable rewards only,
        or a batch full of flagged referrals' rewards would stall the sweep.
        """
        query = (
            select(RewardRow, ReferralRow)
            .join(ReferralRow, ReferralRow.id == RewardRow.referral_id)
            .where(
                RewardRow.status == "pending",
                RewardRow.hold_until <= as_of,
                ReferralRow.status == "approved",
            )
            .order_by(RewardRow.hold_until)
            .limit(limit)
        )
        if tenant_id is not None:
            query = query.where(RewardRow.tenant_id == tenant_id)
        return [(reward, referral) for reward, referral in (await session.execute(query)).all()]

    async def listed(
        self,
        session: AsyncSession,
        tenant: str,
        *,
        beneficiary: str,
        referral_id: str,
        status: str,
        limit: int,
    ) -> list[RewardRow]:
        query = select(RewardRow).where(RewardRow.tenant_id == tenant)
        if beneficiary:
            query = query.where(RewardRow.beneficiary_id == beneficiary)
        if referral_id:
            query = query.where(RewardRow.referral_id == referral_id)
        if status:
            query = query.where(RewardRow.status == status)
        return list(
            await session.scalars(query.order_by(RewardRow.created_at, RewardRow.id).limit(limit))
        )

    async def granted_count(self, session: AsyncSession, tenant: str, program_id: str) -> int:
        value = await session.scalar(
            select(func.count())
            .select_from(RewardRow)
            .where(
                RewardRow.tenant_id == tenant,
                RewardRow.program_id == program_id,
                RewardRow.status == "granted",
            )
        )
        return int(value or 0)

    async def repoint_beneficiary(
        self, session: AsyncSession, tenant: str, merged: str, survivor: str, merge_id: str
    ) -> None:
        columns = [(RewardRow, "beneficiary_id")]
        await repoint_customer(
            session, columns, tenant_id=tenant, from_id=merged, to_id=survivor, merge_id=merge_id
        )
