"""Fission goals (acquisition's fission.goal_reached): the campaign's reward granted once per
(campaign, participant) — points in the ledger or a coupon, through loyalty — and the
participant told, through a notice sent later under the same key. Callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.clock import utc
from closedloop_retention.fission.repository import FissionRepository
from closedloop_retention.fission.reward import notice_text, parse_reward
from closedloop_retention.loyalty.service import LoyaltyService
from closedloop_retention.models import FissionRewardRow
from closedloop_retention.notices.service import NoticeService
from loopkit.errors import InvalidArgument


@dataclass(frozen=True)
class GoalReached:
    tenant_id: str
    campaign_id: str
    participant_id: str
    invited: int
    reward_text: str
    event_id: str
    at: datetime


class FissionService:
    def __init__(
        self,
        loyalty: LoyaltyService,
        notices: NoticeService,
        repository: FissionRepository | None = None,
    ) -> None:
        self._loyalty = loyalty
        self._notices = notices
        self._repo = repository or FissionRepository()

    async def goal_reached(self, session: AsyncSession, goal: GoalReached) -> bool:
        """Grants the goal's reward and queues the notice; False when it was handled before."""
        if not goal.participant_id or not goal.campaign_id:
            raise InvalidArgument(
                "fission.goal_reached without a participant or campaign", field="campaign_id"
            )
        tenant, campaign, who = goal.tenant_id, goal.campaign_id, goal.participant_id
        if await self._repo.find(session, tenant, campaign, who) is not None:
            return False
        reward = parse_reward(goal.reward_text)
        # One key for the grant and the message: a goal is reached once per participant.
        key = f"fission:{campaign}:{who}"
        at = utc(goal.at)
        coupon_id = ""
        if reward.kind == "points":
            await self._loyalty.post(
                session,
                tenant,
                who,
                reward.points,
                source="fission",
                source_ref=campaign,
                reason=f"fission goal reached ({goal.invited} friends)",
                key=key,
                at=at,
            )
        elif reward.kind == "coupon":
            coupon = await self._loyalty.issue_coupon(
                session,
                tenant,
                who,
                template_id=reward.coupon_template_id,
                value_minor=0,
                valid_days=reward.coupon_valid_days,
                reason="fission reward",
                key=key,
                at=at,
            )
            coupon_id = coupon.id
        await self._repo.add(
            session,
            FissionRewardRow(
                tenant_id=tenant,
                campaign_id=campaign,
                participant_id=who,
                kind=reward.kind,
                points=reward.points,
                coupon_id=coupon_id,
                reward_text=goal.reward_text[:500],
                invited=goal.invited,
                event_id=goal.event_id[:64],
                reached_at=at,
            ),
        )
        await self._notices.enqueue(
            session,
            tenant,
            who,
            kind="fission_reward",
            content=notice_text(reward, goal.invited),
            key=key,
            at=at,
        )
        return True

    # --- customer events ---------------------------------------------------------------------

    async def merged(
        self, session: AsyncSession, tenant: str, merged: str, survivor: str, merge_id: str
    ) -> None:
        """The merged customer's rewards become the survivor's (logged: an unmerge gives them
        back); a campaign both reached keeps the survivor's, the other is set aside."""
        await self._repo.repoint(session, tenant, merged, survivor, merge_id)

    async def forgotten(self, session: AsyncSession, tenant: str, ids: Sequence[str]) -> None:
        await self._repo.forget(session, tenant, ids)
