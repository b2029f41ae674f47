"""The background sweep of pending transfers.

With a gateway, WeCom is asked about each new transfer (at once when woken after a commit, else
every interval) and its answer read back every interval (transfer_result). Without one, nothing
leaves the building and a transfer pending for 24 h is taken as done, as WeCom would have done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop_conversion.common import now
from closedloop_conversion.models import TransferRow
from closedloop_conversion.ownership.handovers import Handover, Handovers
from closedloop_conversion.ownership.transfers import TransferService
from loopkit.db import transact
from loopkit.errors import DependencyUnavailable, DomainError
from loopkit.wechat.wecom import CustomerTransfers, HandoverResult

log = logging.getLogger(__name__)


class TransferSweeper:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        transfers: TransferService,
        after_commit: Callable[[], None],
        *,
        interval_s: float,
        wecom: CustomerTransfers | None = None,
    ) -> None:
        self._sessions = sessions
        self._transfers = transfers
        self._handovers = Handovers(transfers)
        self._after_commit = after_commit
        self._interval_s = interval_s
        self._wecom = wecom
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """Something was committed (maybe a new transfer): ask WeCom without waiting a round."""
        self._woken.set()

    async def sweep_once(self) -> int:
        """One round; returns how many transfers it ended."""
        if self._wecom is None:
            done = await transact(
                self._sessions,
                lambda s: self._transfers.sweep(s, "", now()),
                after_commit=self._after_commit,
            )
            if done:
                log.info("completed %d transfers taken over by WeCom", len(done))
            return len(done)
        return await self.ask_wecom() + await self.read_back()

    async def ask_wecom(self) -> int:
        """Asks WeCom about every pending transfer not yet asked about; returns how many WeCom
        refused at once."""
        if self._wecom is None:
            return 0
        claimed = await transact(self._sessions, lambda s: self._handovers.claim_new(s, now()))
        failed = 0
        for handover in claimed:
            failed += await self._ask(self._wecom, handover)
        return failed

    async def _ask(self, wecom: CustomerTransfers, handover: Handover) -> int:
        try:
            answers = await wecom.transfer(
                handover.tenant_id,
                handover.corp_id,
                handover.handover_userid,
                handover.takeover_userid,
                list(handover.transfers),
                resigned=handover.resigned,
                idempotency_key=handover.idempotency_key,
            )
        except DomainError as exc:
            reason = f"the gateway refused the transfer: {exc}"
            log.warning("transfer in %s: %s", handover.corp_id, reason)
            await transact(
                self._sessions,
                lambda s: self._handovers.refuse_all(s, handover, reason, now()),
                after_commit=self._after_commit,
            )
            return len(handover.transfers)
        except DependencyUnavailable as exc:
            # Unmark, so the next round asks again. (Stopped right here, the transfers stay
            # marked: WeCom then reports no record of them, and they are asked again.)
            log.warning("transfer in %s not asked yet: %s", handover.corp_id, exc)
            await transact(self._sessions, lambda s: self._handovers.release(s, handover))
            return 0
        return await transact(
            self._sessions,
            lambda s: self._handovers.record_answers(s, handover, answers, now()),
            after_commit=self._after_commit,
        )

    async def read_back(self) -> int:
        """Reads WeCom's result of every transfer it was asked about; returns how many ended."""
        if self._wecom is None:
            return 0
        waiting = await transact(self._sessions, self._handovers.waiting)
        ended = 0
        for handover in waiting:
            try:
                results = await self._wecom.transfer_results(
                    handover.tenant_id,
                    handover.corp_id,
                    handover.handover_userid,
                    handover.takeover_userid,
                    resigned=handover.resigned,
                )
            except (DomainError, DependencyUnavailable) as exc:
                log.warning("transfer results of %s not read: %s", handover.corp_id, exc)
                continue
            ended += len(await self._record(handover, results))
        return ended

    async def _record(
        self, handover: Handover, results: Sequence[HandoverResult]
    ) -> list[TransferRow]:
        return await transact(
            self._sessions,
            lambda s: self._handovers.record_results(s, handover, results, now()),
            after_commit=self._after_commit,
        )

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_round = loop.time()
        while not stop.is_set():
            self._woken.clear()
            try:
                if loop.time() >= next_round:
                    next_round = loop.time() + self._interval_s
                    await self.sweep_once()
                else:
                    await self.ask_wecom()
            except Exception as exc:  # the next round tries again
                log.warning("transfer sweep failed: %s", exc)
            await _first_of(stop, self._woken, timeout_s=max(0.0, next_round - loop.time()))


async def _first_of(*events: asyncio.Event, timeout_s: float) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*waits, return_exceptions=True)
