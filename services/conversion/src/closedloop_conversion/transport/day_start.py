"""At each UTC midnight, leads that waited for a daily cap get another chance.

Capacity changes drain the waiting queue as they happen; a new day frees every cap at once and
nothing else would notice, so this worker drains the queue of each tenant holding capped leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop_conversion.common import now
from closedloop_conversion.sales import repository as repo
from closedloop_conversion.sales.policy import day_start
from closedloop_conversion.sales.service import SalesService
from loopkit.db import transact

log = logging.getLogger(__name__)

# After a failed drain (database down), try again this often until one succeeds.
RETRY_S = 60.0


class DayStartDrain:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sales: SalesService,
        after_commit: Callable[[], None],
    ) -> None:
        self._sessions = sessions
        self._sales = sales
        self._after_commit = after_commit

    async def drain_once(self) -> int:
        """Assigns what the new day allows, one tenant per transaction; returns how many."""
        tenants = await transact(self._sessions, repo.tenants_waiting_on_caps)
        assigned = 0
        for tenant in tenants:
            assigned += await transact(
                self._sessions,
                partial(_drain, self._sales, tenant),
                after_commit=self._after_commit,
            )
        return assigned

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            at = now()
            midnight = day_start(at) + timedelta(days=1)
            if await _stopped(stop, (midnight - at).total_seconds()):
                return
            while not stop.is_set():
                try:
                    assigned = await self.drain_once()
                except Exception as exc:  # a dependency outage: the leads keep waiting
                    log.warning("day-start drain failed, retrying: %s", exc)
                    if await _stopped(stop, RETRY_S):
                        return
                    continue
                log.info("a new day: %d capped leads assigned", assigned)
                break


async def _drain(sales: SalesService, tenant: str, session: AsyncSession) -> int:
    return await sales.assign_waiting(session, tenant)


async def _stopped(stop: asyncio.Event, timeout_s: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, timeout_s))
    return stop.is_set()
