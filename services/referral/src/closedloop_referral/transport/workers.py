"""Background work: the periodic release of rewards whose hold ended."""

from __future__ import annotations

from closedloop_referral.clock import now
from closedloop_referral.rewards.service import RewardService
from loopkit.periodic import Worker, every
from loopkit.uow import UnitOfWork


def reward_sweep(uow: UnitOfWork, rewards: RewardService, interval_s: float) -> Worker:
    """Grants every reward due, in batches of one unit of work each, every `interval_s`."""

    async def once() -> int:
        total = 0
        while True:
            granted = await uow.run(lambda s: rewards.release_due(s, None, now()))
            total += granted
            if granted == 0:
                return total

    return every(interval_s, once, name="reward sweep")
