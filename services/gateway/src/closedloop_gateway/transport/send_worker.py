"""The send worker: claims due sends (one replica each, their leases renewed while it holds
them), runs up to `concurrency` attempts at once, settles their outcomes in batches, and settles
sends left in doubt by a replica that stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop_gateway import metrics
from closedloop_gateway.models import SendRow
from closedloop_gateway.sends import repository
from closedloop_gateway.sends.executor import InDoubt, SendExecutor
from closedloop_gateway.sends.model import Outcome
from closedloop_gateway.sends.service import SendService
from loopkit.db import transact, transact_read
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
        self._claim_batch = max(1, concurrency // 4)
        self._lease = timedelta(seconds=lease_s)
        self._poll = poll_interval_s
        self._after_commit = after_commit
        self._wakeup = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._next_doubt_check = 0.0
        # Sends this replica claimed and has not settled yet: their leases are renewed.
        self._claimed: set[str] = set()
        self._outcomes: asyncio.Queue[tuple[SendRow, Outcome]] = asyncio.Queue()

    def wake(self) -> None:
        """A send was stored: look now, not at the next poll."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        settler = asyncio.create_task(self._settler())
        try:
            await self._loop(stop)
            # Record what WeChat already answered before stopping.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outcomes.join(), timeout=10)
        finally:
            settler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await settler

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wakeup.clear()
            try:
                # In-doubt sends only appear once a lease ran out: look a few times per lease.
                if time.monotonic() >= self._next_doubt_check:
                    self._next_doubt_check = time.monotonic() + self._lease.total_seconds() / 4
                    await self._renew_claims()
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
        # Claims come in batches: while attempts run, wait until a quarter of the slots are
        # free rather than claiming (a transaction) for every attempt that finishes.
        if free <= 0 or (self._running and free < self._claim_batch):
            return
        at = now()
        claimed = await transact(
            self._sessions,
            lambda s: repository.claim_due(
                s, holder=self._holder, at=at, until=at + self._lease, limit=free
            ),
        )
        self._claimed.update(row.id for row in claimed)
        for row in claimed:
            task = asyncio.create_task(self._execute(row))
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wakeup.set()  # a slot is free

    async def _execute(self, row: SendRow) -> None:
        async with self._slots:
            try:
                outcome = await self._executor.attempt(row)
            except Exception as exc:
                # The database or the token refresh failed before WeChat was asked: retry.
                log.warning("send %s: attempt failed before calling WeChat: %s", row.id, exc)
                outcome = Outcome(
                    "queued",
                    0,
                    f"gateway: {type(exc).__name__}",
                    next_attempt_at=self._sends.retry.next_attempt(row.attempts + 1, now()),
                    called=False,
                )
            await self._settle(row, outcome)

    async def _settle(self, row: SendRow, outcome: Outcome) -> None:
        """Hand the outcome to the settler, which commits the outcomes that finished meanwhile in
        one transaction: the attempt's slot is free again at once, and commits are shared."""
        self._outcomes.put_nowait((row, outcome))

    async def _settler(self) -> None:
        while True:
            batch = [await self._outcomes.get()]
            while not self._outcomes.empty() and len(batch) < 200:
                batch.append(self._outcomes.get_nowait())
            await self._settle_batch(batch)
            for _ in batch:
                self._outcomes.task_done()

    async def _settle_batch(self, batch: list[tuple[SendRow, Outcome]]) -> None:
        async def work(session: AsyncSession) -> list[SendRow | None]:
            outcomes = [(row.id, outcome) for row, outcome in batch]
            return await self._sends.settle_many(session, outcomes, self._holder, now())

        try:
            for attempt in range(1, 8):
                try:
                    settled = await transact(self._sessions, work, after_commit=self._after_commit)
                except Exception as exc:
                    # The answers are known, only recording them failed: keep the claims and
                    # retry; past the last attempt the sends are left in doubt (no longer
                    # renewed) and settled as such.
                    log.warning("settling %d sends failed (try %d): %s", len(batch), attempt, exc)
                    await asyncio.sleep(0.2 * 2**attempt)
                    continue
                for (row, _), result in zip(batch, settled, strict=True):
                    if result is not None:
                        metrics.send_outcome(row.kind, result.status)
                return
        finally:
            self._claimed.difference_update(row.id for row, _ in batch)

    async def _renew_claims(self) -> None:
        """A claim may wait longer than its lease (a slow pace, a slow WeChat): renewed while
        this replica lives, it never looks in doubt to another replica or to this one."""
        ids = list(self._claimed)
        until = now() + self._lease
        for i in range(0, len(ids), 500):
            page = ids[i : i + 500]

            async def renew(session: AsyncSession, page: list[str] = page) -> None:
                await repository.renew(session, page, holder=self._holder, until=until)

            await transact(self._sessions, renew)

    async def _settle_in_doubt(self) -> None:
        at = now()
        # A read: on SQLite the idle poll takes no write lock.
        stuck = await transact_read(self._sessions, lambda s: repository.in_doubt(s, at, 50))
        for send_id in stuck:
            if send_id in self._claimed:
                continue  # still ours, in hand (its renewal is racing the lease)

            async def take(session: AsyncSession, i: str = send_id) -> SendRow | None:
                if not await repository.take_over(
                    session, i, holder=self._holder, at=at, until=at + self._lease
                ):
                    return None  # another replica took it
                return await repository.by_id(session, i)

            row = await transact(self._sessions, take)
            if row is None:
                continue
            try:
                outcome = await self._executor.reconcile(row)
            except InDoubt as exc:
                log.warning("send %s still in doubt: %s", send_id, exc)
                continue  # our lease runs out and the next look tries again
            log.warning(
                "send %s was left in doubt by a stopped replica: %s", send_id, outcome.status
            )
            metrics.send_outcome(row.kind, "in_doubt")
            await self._settle_batch([(row, outcome)])
