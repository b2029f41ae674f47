"""The background sweep completing pending transfers WeCom has taken over (after 24 h)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop_conversion.common import now
from closedloop_conversion.ownership.transfers import TransferService
from loopkit.db import transact

log = logging.getLogger(__name__)


class TransferSweeper:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        transfers: TransferService,
        after_commit: Callable[[], None],
        *,
        interval_s: float,
    ) -> None:
        self._sessions = sessions
        self._transfers = transfers
        self._after_commit = after_commit
        self._interval_s = interval_s

    async def sweep_once(self) -> int:
        done = await transact(
            self._sessions,
            lambda s: self._transfers.sweep(s, "", now()),
            after_commit=self._after_commit,
        )
        if done:
            log.info("completed %d transfers taken over by WeCom", len(done))
        return len(done)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sweep_once()
            except Exception as exc:  # the next round tries again
                log.warning("transfer sweep failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval_s)
