"""The callback worker: drains stored WeChat messages into touches and interactions.

Messages are stored by the HTTP callback in one short transaction and answered at once; this
worker resolves each sender through identity (outside any transaction) and records what the
message means in one unit of work. Unprocessed rows survive a restart: the table is the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop_acquisition import metrics
from closedloop_acquisition.callbacks.service import CallbackService
from closedloop_acquisition.capture.service import CaptureService
from closedloop_acquisition.models import WechatInboxRow
from loopkit.db import transact
from loopkit.errors import DependencyUnavailable, DomainError
from loopkit.tracing import span_from_headers

log = logging.getLogger(__name__)
BATCH = 50
MAX_ATTEMPTS = 10


class InboxWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        callbacks: CallbackService,
        capture: CaptureService,
        after_commit: Callable[[], None],
        *,
        poll_interval_s: float = 1.0,
    ) -> None:
        self._sessions = sessions
        self._callbacks = callbacks
        self._capture = capture
        self._after_commit = after_commit
        self._poll_interval_s = poll_interval_s
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            try:
                busy = await self.drain_once()
            except Exception:
                log.exception("callback worker: batch failed; retrying")
                busy = False
            if busy:
                continue
            waiters = [asyncio.create_task(self._wake.wait()), asyncio.create_task(stop.wait())]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait(
                    waiters, timeout=self._poll_interval_s, return_when=asyncio.FIRST_COMPLETED
                )
            for waiter in waiters:
                waiter.cancel()

    async def drain_once(self) -> bool:
        """Processes one batch; True when every row of a full batch was handled."""
        async with self._sessions() as session:
            rows = await self._callbacks.pending(session, BATCH)
        for row in rows:
            if not await self._handle(row):
                return False  # identity is away: wait before the next attempt
        return len(rows) == BATCH

    async def _handle(self, row: WechatInboxRow) -> bool:
        """One message, in the trace of the callback request that stored it."""
        kind = row.message.get("Event") or row.message.get("MsgType", "")
        attributes = {"wechat.app_id": row.app_id, "wechat.message": kind}
        with span_from_headers(
            f"process wechat {kind}",
            row.trace_context,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        ):
            return await self._process(row)

    async def _process(self, row: WechatInboxRow) -> bool:
        try:
            customer = await self._capture.resolve(row.tenant_id, self._callbacks.identities(row))
        except DependencyUnavailable as exc:
            # Not the message's fault: kept, retried without limit once identity is back.
            await self._fail(row, f"identity unavailable: {exc}", final=False, counts=False)
            return False
        except DomainError as exc:
            await self._fail(row, f"identity refused: {exc}", final=True)
            return True
        except Exception as exc:
            # Identity answered with a bug, not an outage: counted, given up after MAX_ATTEMPTS.
            log.exception("callback worker: resolving message %s failed", row.id)
            await self._fail(row, f"identity failed: {exc}", final=False)
            return True
        try:
            touches = await transact(
                self._sessions,
                lambda s: self._callbacks.process(s, row.id, customer),
                after_commit=self._after_commit,
            )
        except DomainError as exc:
            await self._fail(row, str(exc), final=True)
            return True
        except Exception as exc:
            log.exception("callback worker: message %s failed", row.id)
            await self._fail(row, f"{type(exc).__name__}: {exc}", final=False)
            return False
        for touch in touches:
            metrics.touch(touch.kind, touch.channel_kind)
        return True

    async def _fail(
        self, row: WechatInboxRow, reason: str, *, final: bool, counts: bool = True
    ) -> None:
        final = final or (counts and row.attempts + 1 >= MAX_ATTEMPTS)
        if final:
            log.warning("callback message %s given up: %s", row.id, reason)
        await transact(
            self._sessions,
            lambda s: self._callbacks.failed(s, row.id, reason, final=final, counts=counts),
        )
