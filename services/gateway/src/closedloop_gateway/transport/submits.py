"""SendMessage calls stored together: the calls that arrive while a store is on its way to the
database wait for it and then go in one `SendService.submit_many` (one INSERT ... ON CONFLICT DO
NOTHING for all of them), as a SendMessages page would.

One SendMessage per send (a journey's step, a rep's follow-up, 64 in flight) otherwise costs a
unit of work, a pool checkout and a statement per call. Nothing waits for company: the first call
goes at once, and only calls that came while a store was running share the next one, so a lone
call is stored as soon as before. Every guarantee is `submit_many`'s: each key stored once (the
same key twice in one store answers the first's send), an item it refuses gets its own error
(the others go on), and a store that fails fails each of its calls with that error."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import Context

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop_gateway.models import SendRow
from closedloop_gateway.sends.model import NewSend
from closedloop_gateway.sends.service import SendService
from loopkit.db import transact
from loopkit.errors import DomainError
from loopkit.timestamps import now

_Waiting = tuple[NewSend, asyncio.Future[tuple[SendRow, bool]]]


class SubmitQueue:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sends: SendService,
        after_submit: Callable[[], None],
        *,
        max_batch: int,
    ) -> None:
        self._sessions = sessions
        self._sends = sends
        self._after_submit = after_submit
        self._max_batch = max_batch
        self._waiting: list[_Waiting] = []
        self._storing: asyncio.Task[None] | None = None

    async def submit(self, new: NewSend) -> tuple[SendRow, bool]:
        """The stored send for the key and whether this call created it, or the error
        `SendService.submit_many` gives the send."""
        future: asyncio.Future[tuple[SendRow, bool]] = asyncio.get_running_loop().create_future()
        self._waiting.append((new, future))
        if self._storing is None:
            # A task of its own: a caller cancelled (its deadline) leaves the others' store be.
            # It serves every caller, so it carries none's context (tenant, span).
            self._storing = asyncio.create_task(self._store_waiting(), context=Context())
        return await future

    async def _store_waiting(self) -> None:
        batch: list[_Waiting] = []
        try:
            while self._waiting:
                # A few turns of the loop first (microseconds): calls gRPC has already accepted
                # reach the queue and share this store. On a starved process they trickle in
                # one by one, and stores of 1 were the rule without these turns (2 with them).
                for _ in range(3):
                    await asyncio.sleep(0)
                batch = self._take()
                try:
                    await self._store(batch)
                except Exception as exc:  # the store failed: so did every call in it
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
        finally:
            self._storing = None
            # Cancelled (the process stops): no caller waits for a store that will not come.
            for _, future in batch + self._waiting:
                future.cancel()
            self._waiting = []

    def _take(self) -> list[_Waiting]:
        """The waiting calls of the first one's tenant, up to `max_batch` (submit_many stores
        one tenant's sends)."""
        tenant = self._waiting[0][0].tenant_id
        batch: list[_Waiting] = []
        rest: list[_Waiting] = []
        for waiting in self._waiting:
            if waiting[0].tenant_id == tenant and len(batch) < self._max_batch:
                batch.append(waiting)
            else:
                rest.append(waiting)
        self._waiting = rest
        return batch

    async def _store(self, batch: list[_Waiting]) -> None:
        news = [new for new, _ in batch]
        # Each statement of a submit is atomic alone (the new sends are one INSERT ... ON
        # CONFLICT DO NOTHING): no BEGIN/COMMIT round trips on PostgreSQL.
        results = await transact(
            self._sessions, lambda s: self._sends.submit_many(s, news, now()), autocommit=True
        )
        if any(not isinstance(r, DomainError) and r[1] for r in results):
            self._after_submit()  # the send worker looks now, not at its next poll
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue  # its caller is gone (cancelled); the send is stored all the same
            if isinstance(result, DomainError):
                future.set_exception(result)
            else:
                future.set_result(result)
