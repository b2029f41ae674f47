"""The periodic sweep: grants rewards whose hold ended."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop_referral.clock import now
from closedloop_referral.referrals.service import ReferralService
from loopkit.db import transact

log = logging.getLogger(__name__)


class RewardSweep:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        referrals: ReferralService,
        after_commit: Callable[[], None],
        interval_s: float,
    ) -> None:
        self._sessions = sessions
        self._referrals = referrals
        self._after_commit = after_commit
        self._interval_s = interval_s

    async def once(self) -> int:
        total = 0
        while True:
            granted = await transact(
                self._sessions,
                lambda s: self._referrals.release_due(s, None, now()),
                after_commit=self._after_commit,
            )
            total += granted
            if granted == 0:
                return total

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.once()
            except Exception:
                log.exception("reward sweep failed; retrying next round")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval_s)
