"""Fraud checks run when a lead is tied to a referrer: a flagged referral waits for review."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_referral.clock import utc
from closedloop_referral.models import VisitRow
from closedloop_referral.programs.repository import ProgramRepository
from closedloop_referral.referrals.repository import LIVE, ReferralRepository

MAX_RING_DEPTH = 5


@dataclass(frozen=True)
class FraudRules:
    # Many newcomers from one referrer within `burst_window_s` are held for review.
    burst_window_s: int = 600
    burst_threshold: int = 5


class FraudCheck:
    def __init__(
        self, rules: FraudRules, programs: ProgramRepository, referrals: ReferralRepository
    ) -> None:
        self._rules = rules
        self._programs = programs
        self._referrals = referrals

    async def reason(
        self,
        session: AsyncSession,
        tenant: str,
        referrer: str,
        newcomer: str,
        *,
        visit: VisitRow | None,
        seen_before: datetime | None,
        at: datetime,
    ) -> str:
        """Why this referral is suspicious ("" when it is not), first rule that matches."""
        if referrer == newcomer:
            return "self_referral"
        device = visit.device_id if visit is not None else ""
        if device and await self._programs.device_used_by(session, tenant, referrer, device):
            return "self_referral"
        if await self._in_chain_above(session, tenant, referrer, newcomer):
            return "referral_ring"
        first_contact = utc(visit.at) if visit is not None else at
        if seen_before is not None and seen_before < first_contact:
            return "existing_customer"
        since = at - timedelta(seconds=self._rules.burst_window_s)
        recent = await self._referrals.referred_since(session, tenant, referrer, since)
        if recent + 1 > self._rules.burst_threshold:
            return "burst"
        return ""

    async def _in_chain_above(
        self, session: AsyncSession, tenant: str, customer: str, target: str
    ) -> bool:
        """Whether `target` referred `customer`, directly or up to MAX_RING_DEPTH levels up."""
        current = customer
        for _ in range(MAX_RING_DEPTH):
            parent = await self._referrals.referrer_of(session, tenant, current, LIVE)
            if parent is None:
                return False
            if parent == target:
                return True
            current = parent
        return False
