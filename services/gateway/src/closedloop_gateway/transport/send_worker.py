"""The send worker: claims due sends (one replica each), runs up to `concurrency` attempts at
once, settles their outcomes, and settles sends left in doubt by a replica that stopped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop_gateway import metrics
from closedloop_gateway.models import SendRow
from closedloop_gateway.sends import repository
from closedloop_gateway.sends.executor import SendExecutor
from closedloop_gateway.sends.model import Outcome
from closedloop_gateway.sends.service import SendService
from loopkit.db import transact
from loopkit.timestamps import now

log = logging.getLogger(__name__)


class SendWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sends: SendService,
        executor: SendExecutor,
        *,
        holder: str,
        concurrency: int,
        lease_s: float,
        poll_interval_s: float,
        after_commit: Callable[[], None],
    ) -> None:
        self._sessions = sessions
        self._sends = sends
        self._executor = executor
        self._holder = holder
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._lease = timedelta(seconds=lease_s)
        self._poll = poll_interval_s
        self._after_commit = after_commit
        self._wakeup = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """A send was stored: look now, not at the next poll."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wakeup.clear()
            try:
                await self._settle_in_doubt()
                await self._claim_and_start()
            except Exception as exc:
                # The database is away: sends stay stored and are taken on a later pass.
                log.warning("send worker pass failed: %s", exc)
            waiters = [
                asyncio.ensure_future(self._wakeup.wait()),
                asyncio.ensure_future(stop.wait()),
            ]
            await asyncio.wait(waiters, timeout=self._poll, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _claim_and_start(self) -> None:
        free = self._concurrency - len(self._running)
        if free <= 0:
            return
        at = now()
        due = await transact(self._sessions, lambda s: repository.due(s, at, free))
        for send_id, status in due:
            claimed = await transact(
                self._sessions,
                lambda s, i=send_id, st=status: repository.claim(  # type: ignore[misc]
                    s, i, st, holder=self._holder, at=at, until=at + self._lease
                ),
            )
            if not claimed:
                continue  # another replica took it
            task = asyncio.create_task(self._execute(send_id))
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wakeup.set()  # a slot is free

    async def _execute(self, send_id: str) -> None:
        async with self._slots:
            row = await transact(self._sessions, lambda s: repository.by_id(s, send_id))
            if row is None:
                return
            try:
                outcome = await self._executor.attempt(row)
            except Exception as exc:
                # The database or the token refresh failed before WeChat was asked: retry.
                log.warning("send %s: attempt failed before calling WeChat: %s", send_id, exc)
                outcome = Outcome(
                    "queued",
                    0,
                    f"gateway: {type(exc).__name__}",
                    next_attempt_at=self._sends.retry.next_attempt(row.attempts + 1, now()),
                    called=False,
                )
            await self._settle(row, outcome)

    async def _settle(self, row: SendRow, outcome: Outcome) -> None:
        for attempt in range(1, 6):
            try:
                settled = await transact(
                    self._sessions,
                    lambda s: self._sends.settle(s, row.id, self._holder, outcome, now()),
                    after_commit=self._after_commit,
                )
            except Exception as exc:
                # Keep the claim: the answer is known, only recording it failed. Retry a few
                # times; after that the send is left in doubt and settled as such.
                log.warning("send %s: settling failed (attempt %d): %s", row.id, attempt, exc)
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            if settled is not None:
                metrics.send_outcome(row.kind, settled.status)
            return

    async def _settle_in_doubt(self) -> None:
        at = now()
        stuck = await transact(self._sessions, lambda s: repository.in_doubt(s, at, 50))
        for send_id in stuck:

            async def work(session: AsyncSession, i: str = send_id) -> SendRow | None:
                if not await repository.take_over(
                    session, i, holder=self._holder, at=at, until=at + self._lease
                ):
                    return None
                return await self._sends.settle_in_doubt(session, i, self._holder, at)

            settled = await transact(self._sessions, work, after_commit=self._after_commit)
            if settled is not None:
                log.warning("send %s settled as in doubt (its replica stopped mid-call)", send_id)
                metrics.send_outcome(settled.kind, "in_doubt")
