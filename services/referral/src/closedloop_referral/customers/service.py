"""customer.merged and customer.forgotten across programs, referrals and rewards."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_referral.clock import utc
from closedloop_referral.programs.repository import ProgramRepository
from closedloop_referral.referrals.repository import ReferralRepository
from closedloop_referral.referrals.service import ReferralService
from closedloop_referral.rewards.repository import RewardRepository


class CustomerEvents:
    def __init__(
        self,
        referrals: ReferralService,
        programs: ProgramRepository,
        referral_rows: ReferralRepository,
        rewards: RewardRepository,
    ) -> None:
        self._referrals = referrals
        self._programs = programs
        self._rows = referral_rows
        self._rewards = rewards

    async def merged(
        self, session: AsyncSession, tenant: str, survivor: str, merged: str, at: datetime
    ) -> None:
        """Moves the merged customer's rows to the survivor without making a self-referral loop
        or a second referral (so a second reward) for one person."""
        mine = await self._rows.of_newcomer(session, tenant, survivor)
        theirs = await self._rows.of_newcomer(session, tenant, merged)
        if mine is not None and theirs is not None:
            if utc(mine.created_at) <= utc(theirs.created_at):
                await self._referrals.void(session, theirs, "merged_duplicate", at)
            else:
                # The earlier referral (the merged id's) wins the survivor's newcomer slot; the
                # dropped one keeps the merged id, swapped through a placeholder so the unique
                # (tenant, newcomer) rule holds at every step.
                await self._referrals.void(session, mine, "merged_duplicate", at)
                mine.newcomer_id = mine.id
                await session.flush()
                theirs.newcomer_id = survivor
                await session.flush()
                mine.newcomer_id = merged
                await session.flush()
        await self._programs.repoint(session, tenant, merged, survivor)
        await self._rows.repoint_referrer(session, tenant, merged, survivor)
        await self._rewards.repoint_beneficiary(session, tenant, merged, survivor)
        if theirs is not None and mine is None:
            theirs.newcomer_id = survivor  # their one referral is now the survivor's
        await session.flush()
        for loop in await self._rows.self_loops(session, tenant, survivor):
            loop.flag_reason = "self_referral"
            await self._referrals.void(session, loop, "self_referral", at)
        await self._merge_known(session, tenant, survivor, merged)

    async def _merge_known(
        self, session: AsyncSession, tenant: str, survivor: str, merged: str
    ) -> None:
        other = await self._rows.find_known(session, tenant, merged)
        if other is None:
            return
        mine = await self._rows.known(session, tenant, survivor)
        leads = [utc(v) for v in (mine.first_lead_at, other.first_lead_at) if v is not None]
        mine.first_lead_at = min(leads) if leads else None
        theirs_first = other.first_paid_at is not None and (
            mine.first_paid_at is None or utc(other.first_paid_at) < utc(mine.first_paid_at)
        )
        if theirs_first:
            mine.first_paid_at = other.first_paid_at
            mine.first_paid_order_id = other.first_paid_order_id
            mine.first_paid_minor = other.first_paid_minor
        await self._rows.drop_known(session, other)

    async def forgotten(self, session: AsyncSession, tenant: str, ids: Sequence[str]) -> None:
        """Erases personal data (openids, device hints, shared content); the pseudonymous
        referral and reward rows stay, as the accounts of rewards paid."""
        ids = list(ids)
        await self._programs.erase_personal(session, tenant, ids)
        await self._rows.forget_known(session, tenant, ids)
