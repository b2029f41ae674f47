"""Program stats and the referral tree (reads only; no table of its own)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_referral.clock import utc
from closedloop_referral.programs.repository import ProgramRepository
from closedloop_referral.programs.service import ProgramService
from closedloop_referral.referrals.repository import ReferralRepository
from closedloop_referral.referrals.views import ReferralView
from closedloop_referral.rewards.repository import RewardRepository
from loopkit.errors import InvalidArgument
from loopkit.views import view_of

MAX_TREE_DEPTH = 5


@dataclass(frozen=True)
class TreeNode:
    customer_id: str
    referrer_id: str
    depth: int
    referral: ReferralView | None


@dataclass(frozen=True)
class ProgramStats:
    codes: int
    shares: int
    visits: int
    referrals: int
    flagged: int
    converted: int
    rewards_granted: int
    viral_coefficient: float
    mean_seconds_to_convert: float
    top_referrers: list[tuple[str, int, int]]


class StatsService:
    def __init__(
        self,
        programs: ProgramService,
        program_rows: ProgramRepository,
        referrals: ReferralRepository,
        rewards: RewardRepository,
    ) -> None:
        self._programs = programs
        self._program_rows = program_rows
        self._referrals = referrals
        self._rewards = rewards

    async def tree(
        self, session: AsyncSession, tenant: str, customer_id: str, depth: int
    ) -> list[TreeNode]:
        """Who the customer referred, and whom they referred, down to `depth` levels."""
        if not customer_id:
            raise InvalidArgument("a customer id is required", field="customer_id")
        if not 0 <= depth <= MAX_TREE_DEPTH:
            raise InvalidArgument("depth must be 1..5", field="depth")
        depth = depth or 2
        nodes = [TreeNode(customer_id, "", 0, None)]
        frontier, seen = [customer_id], {customer_id}
        for level in range(1, depth + 1):
            if not frontier:
                break
            rows = await self._referrals.referred_by(session, tenant, frontier)
            frontier = []
            for row in rows:
                if row.newcomer_id in seen:
                    continue  # a ring: shown once
                seen.add(row.newcomer_id)
                nodes.append(
                    TreeNode(row.newcomer_id, row.referrer_id, level, view_of(ReferralView, row))
                )
                frontier.append(row.newcomer_id)
        return nodes

    async def stats(
        self, session: AsyncSession, tenant: str, program_id: str, top: int
    ) -> ProgramStats:
        program = await self._programs.program(session, tenant, program_id)
        pid = program.id
        codes, shares, visits = await self._program_rows.counts(session, tenant, pid)
        referrals, flagged, approved, converted = await self._referrals.program_counts(
            session, tenant, pid
        )
        granted = await self._rewards.granted_count(session, tenant, pid)
        spans = [
            (utc(c) - utc(s)).total_seconds()
            for s, c in await self._referrals.conversion_times(session, tenant, pid)
        ]
        holders = self._program_rows.code_holders(tenant, pid)
        referrers = await self._referrals.referrer_count(session, tenant, pid, holders)
        limit = min(max(top, 1), 100) if top else 10
        return ProgramStats(
            codes=codes,
            shares=shares,
            visits=visits,
            referrals=referrals,
            flagged=flagged,
            converted=converted,
            rewards_granted=granted,
            viral_coefficient=approved / referrers if referrers else 0.0,
            mean_seconds_to_convert=sum(spans) / len(spans) if spans else 0.0,
            top_referrers=await self._referrals.top_referrers(session, tenant, pid, limit),
        )
