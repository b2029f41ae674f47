"""Referral rewards handed out and taken back (referral's reward.granted / reward.revoked).

A clawback is recorded once per reward (`reward_revocations`), whichever order the two events
arrive in: a grant handled after its revocation hands nothing out. Points come back as a negative
ledger entry (`revoke:<reward>`) of at most the current balance: points already spent are not
recovered from future earnings, they are written off (recorded, and taken off the lifetime
points the tier is based on), so a customer never finds a negative balance. A coupon is disabled
(`revoked_at`) unless it was redeemed already (then recorded as `already_redeemed`). Callers own
the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.clock import utc
from closedloop_retention.loyalty.repository import LoyaltyRepository
from closedloop_retention.loyalty.revocations import RevocationRepository
from closedloop_retention.loyalty.service import LoyaltyService
from closedloop_retention.models import RewardRevocationRow


@dataclass(frozen=True)
class Revocation:
    """A referral reward referral took back after its grant. What to reverse is what retention
    handed out for it (the `reward:<id>` ledger entry or coupon), found by the reward id."""

    reward_id: str
    reason: str


class RewardClawback:
    def __init__(
        self,
        loyalty: LoyaltyService,
        loyalty_rows: LoyaltyRepository,
        revocations: RevocationRepository | None = None,
    ) -> None:
        self._loyalty = loyalty
        self._loyalty_rows = loyalty_rows
        self._rows = revocations or RevocationRepository()

    async def revoked_already(self, session: AsyncSession, tenant: str, reward_id: str) -> bool:
        """A reward.granted handled after its reward's revocation must hand nothing out."""
        return await self._rows.find(session, tenant, reward_id) is not None

    async def revoke(
        self, session: AsyncSession, tenant: str, revocation: Revocation, at: datetime
    ) -> RewardRevocationRow:
        """Takes the reward back once: the points (down to a zero balance) or the coupon."""
        done = await self._rows.find(session, tenant, revocation.reward_id)
        if done is not None:
            return done
        at = utc(at)
        row = RewardRevocationRow(
            tenant_id=tenant,
            reward_id=revocation.reward_id,
            kind="none",
            points_taken=0,
            points_written_off=0,
            coupon_id="",
            coupon_outcome="",
            reason=(revocation.reason or "referral reward revoked")[:200],
            revoked_at=at,
        )
        key = f"reward:{revocation.reward_id}"
        credited = await self._loyalty_rows.entry_by_key(session, tenant, key)
        if credited is not None and credited.points > 0:
            await self._take_points(session, tenant, credited.customer_id, credited.points, row)
        coupon = await self._loyalty_rows.coupon_by_key(session, tenant, key)
        if coupon is not None:
            row.kind, row.coupon_id = "coupon", coupon.id
            disabled = await self._loyalty_rows.revoke_coupon(session, tenant, coupon.id, at)
            row.coupon_outcome = "disabled" if disabled else "already_redeemed"
        # Written last: a concurrent second delivery fails on the primary key and is retried,
        # then finds this row.
        await self._rows.add(session, row)
        return row

    async def _take_points(
        self,
        session: AsyncSession,
        tenant: str,
        customer_id: str,
        points: int,
        row: RewardRevocationRow,
    ) -> None:
        balance = await self._rows.locked_balance(session, tenant, customer_id)
        taken = min(points, max(balance, 0))
        row.kind, row.points_taken, row.points_written_off = "points", taken, points - taken
        spent = f"; {points - taken} already spent, written off" if taken < points else ""
        if taken > 0:
            await self._loyalty.post(
                session,
                tenant,
                customer_id,
                -taken,
                source="revoke",
                source_ref=row.reward_id,
                reason=f"referral reward revoked ({row.reason}){spent}",
                key=f"revoke:{row.reward_id}",
                at=row.revoked_at,
            )
        if taken < points:
            await self._rows.lower_lifetime(
                session, tenant, customer_id, points - taken, row.revoked_at
            )
