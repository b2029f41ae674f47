"""Rewards: created when a referral qualifies, `pending` for the refund window (or `flagged`
while the referral waits for review), then `approved` and `granted`; `voided` when the referral
or its order goes away, before the grant or after it (a clawback: retention is told to take the
points back or disable the coupon). Callers own the transaction."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop.common.v1 import common_pb2
from closedloop.events.v1 import referral_events_pb2 as ev
from closedloop_referral import metrics
from closedloop_referral.clock import utc
from closedloop_referral.models import ProgramRow, ReferralRow, RewardRow
from closedloop_referral.referrals.repository import ReferralRepository
from closedloop_referral.rewards.repository import RewardRepository
from closedloop_referral.rewards.views import RewardView
from loopkit.events import Outbox
from loopkit.views import view_of

_KINDS = {
    "points": ev.REWARD_KIND_POINTS,
    "coupon": ev.REWARD_KIND_COUPON,
    "cash": ev.REWARD_KIND_CASH,
}
# (level, beneficiary, kind, points, coupon template, cash in minor units)
Plan = tuple[int, str, str, int, str, int]


class RewardService:
    def __init__(
        self, outbox: Outbox, rewards: RewardRepository, referrals: ReferralRepository
    ) -> None:
        self._outbox = outbox
        self._repo = rewards
        # The ledger (owned by referrals) records every reward's state change too.
        self._referrals = referrals

    async def create(
        self, session: AsyncSession, referral: ReferralRow, program: ProgramRow, at: datetime
    ) -> None:
        """The rewards of a qualified referral (flagged ones wait for review): never twice per
        (referral, level)."""
        qualified = utc(referral.qualified_at) if referral.qualified_at else at
        hold_until = qualified + timedelta(seconds=program.hold_seconds)
        for level, who, kind, points, coupon, cash in await self._plans(session, referral, program):
            if await self._repo.exists(session, referral, level):
                continue  # never granted twice for the same newcomer
            flagged = referral.status == "flagged"
            capped = (
                not flagged and level == 1 and await self._cap_reached(session, program, who, at)
            )
            reward = RewardRow(
                id=str(ULID()),
                tenant_id=referral.tenant_id,
                referral_id=referral.id,
                program_id=program.id,
                beneficiary_id=who,
                level=level,
                kind=kind,
                points=points,
                coupon_template_id=coupon,
                cash_minor=cash,
                currency=program.currency,
                status="voided" if capped else "flagged" if flagged else "pending",
                reason="cap_reached" if capped else "",
                hold_until=hold_until,
                granted_at=None,
                created_at=at,
            )
            await self._repo.add(session, reward)
            self._referrals.log(
                session, referral, reward, ("", reward.status), reward.reason or "earned", at=at
            )
            if reward.status == "pending" and hold_until <= at:
                await self._grant(session, referral, reward, at)

    async def approve_flagged(
        self,
        session: AsyncSession,
        referral: ReferralRow,
        program: ProgramRow,
        *,
        at: datetime,
        actor: str,
    ) -> None:
        """The referral passed review: its flagged rewards go on under the cap (pending, or
        granted when the hold is over)."""
        for reward in await self._repo.of_referral(session, referral):
            if reward.status != "flagged":
                continue
            if reward.level == 1 and await self._cap_reached(
                session, program, reward.beneficiary_id, at
            ):
                reward.status, reward.reason = "voided", "cap_reached"
                self._referrals.log(
                    session, referral, reward, ("flagged", "voided"), "cap_reached", at=at
                )
                continue
            reward.status = "pending"
            self._referrals.log(
                session, referral, reward, ("flagged", "pending"), "review", at=at, actor=actor
            )
            if utc(reward.hold_until) <= at:
                await self._grant(session, referral, reward, at)

    async def _plans(
        self, session: AsyncSession, referral: ReferralRow, program: ProgramRow
    ) -> list[Plan]:
        plans: list[Plan] = [
            (
                1,
                referral.referrer_id,
                program.referrer_kind,
                program.referrer_points,
                program.referrer_coupon,
                program.referrer_cash_minor,
            )
        ]
        if program.levels == 2 and program.referrer_kind in ("points", "cash"):
            parent = await self._referrals.referrer_of(
                session, referral.tenant_id, referral.referrer_id, ("approved",)
            )
            if parent and parent not in (referral.newcomer_id, referral.referrer_id):
                pct = program.level2_percent
                plans.append(
                    (
                        2,
                        parent,
                        program.referrer_kind,
                        program.referrer_points * pct // 100,
                        "",
                        program.referrer_cash_minor * pct // 100,
                    )
                )
        if program.newcomer_kind:
            plans.append(
                (
                    0,
                    referral.newcomer_id,
                    program.newcomer_kind,
                    program.newcomer_points,
                    program.newcomer_coupon,
                    program.newcomer_cash_minor,
                )
            )
        return plans

    async def _cap_reached(
        self, session: AsyncSession, program: ProgramRow, referrer: str, at: datetime
    ) -> bool:
        if not program.cap_per_period:
            return False
        since = at - timedelta(days=program.cap_period_days)
        count = await self._repo.referrer_rewards_since(session, program, referrer, since)
        return count >= program.cap_per_period

    async def _grant(
        self, session: AsyncSession, referral: ReferralRow, reward: RewardRow, at: datetime
    ) -> None:
        # pending -> approved (hold over, referral approved) -> granted, one step: both recorded.
        self._referrals.log(session, referral, reward, ("pending", "approved"), "hold ended", at=at)
        reward.status = "granted"
        reward.granted_at = at
        self._referrals.log(session, referral, reward, ("approved", "granted"), "granted", at=at)
        cash = (
            common_pb2.Money(currency=reward.currency, amount_minor=reward.cash_minor)
            if reward.kind == "cash"
            else None
        )
        await self._outbox.emit(
            session,
            "reward.granted",
            tenant_id=reward.tenant_id,
            customer_id=reward.beneficiary_id,
            payload=ev.RewardGranted(
                reward_id=reward.id,
                referral_id=reward.referral_id,
                kind=_KINDS[reward.kind],
                points=reward.points if reward.kind == "points" else 0,
                cash=cash,
                coupon_template_id=reward.coupon_template_id,
                level=reward.level,
            ),
        )
        metrics.granted(session, reward.kind)

    async def revoke_within_hold(
        self, session: AsyncSession, referral: ReferralRow, reason: str, at: datetime
    ) -> int:
        """Voids the referral's rewards whose hold had not ended at `at`, granted ones included
        (a refund inside the refund window takes the reward back)."""
        revoked = 0
        for reward in await self._repo.of_referral(session, referral):
            if reward.status == "voided" or at >= utc(reward.hold_until):
                continue
            await self._revoke(session, referral, reward, reason, at=at)
            revoked += 1
        return revoked

    async def void_all(
        self,
        session: AsyncSession,
        referral: ReferralRow,
        reason: str,
        *,
        at: datetime,
        actor: str = "system",
    ) -> None:
        """Voids every reward of the referral not voided yet (it was rejected, or a merge showed
        a self-referral or a duplicate): granted ones are clawed back."""
        for reward in await self._repo.of_referral(session, referral):
            if reward.status != "voided":
                await self._revoke(session, referral, reward, reason, at=at, actor=actor)

    async def _revoke(
        self,
        session: AsyncSession,
        referral: ReferralRow,
        reward: RewardRow,
        reason: str,
        *,
        at: datetime,
        actor: str = "system",
    ) -> None:
        was = reward.status
        reward.status = "voided"
        reward.reason = reason
        self._referrals.log(
            session, referral, reward, (was, reward.status), reason, at=at, actor=actor
        )
        # Retention reverses what it handed out (points, a coupon); a reward never granted
        # reverses nothing.
        granted = was == "granted"
        await self._outbox.emit(
            session,
            "reward.revoked",
            tenant_id=reward.tenant_id,
            customer_id=reward.beneficiary_id,
            payload=ev.RewardRevoked(
                reward_id=reward.id,
                referral_id=reward.referral_id,
                reason=reason,
                points=reward.points if granted and reward.kind == "points" else 0,
                kind=_KINDS[reward.kind],
                coupon_template_id=reward.coupon_template_id,
                was_granted=granted,
            ),
        )

    async def release_due(
        self, session: AsyncSession, tenant_id: str | None, as_of: datetime, limit: int = 500
    ) -> int:
        """Grants pending rewards whose hold ended by `as_of` (approved referrals only)."""
        granted = 0
        for reward, referral in await self._repo.due(session, tenant_id, as_of, limit):
            await self._grant(session, referral, reward, as_of)
            granted += 1
        return granted

    # --- reads -------------------------------------------------------------------------------

    async def of_referral(self, session: AsyncSession, referral: ReferralRow) -> list[RewardView]:
        return [view_of(RewardView, r) for r in await self._repo.of_referral(session, referral)]

    async def listed(
        self,
        session: AsyncSession,
        tenant: str,
        *,
        beneficiary: str,
        referral_id: str,
        status: str,
        limit: int,
    ) -> list[RewardView]:
        limit = min(max(limit, 1), 500) if limit else 100
        rows = await self._repo.listed(
            session,
            tenant,
            beneficiary=beneficiary,
            referral_id=referral_id,
            status=status,
            limit=limit,
        )
        return [view_of(RewardView, r) for r in rows]
