"""Background work, each a `loopkit.periodic.every` around use cases.

The transfer sweeper: with a gateway, WeCom is asked about each new transfer (at once when woken
after a commit, else every interval) and its answer read back every interval (transfer_result).
Without one, nothing leaves the building and a transfer pending for 24 h is taken as done, as
WeCom would have done.

The day-start drain: capacity changes drain the waiting queue as they happen; a new UTC day frees
every daily cap at once and nothing else would notice, so each minute this worker looks whether a
day has begun since its last drain and then drains the queue of each tenant holding capped leads
(a failed drain is tried again the next minute).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from functools import partial

from closedloop_conversion.common import now
from closedloop_conversion.ownership.handovers import Handover, Handovers
from closedloop_conversion.ownership.transfers import TransferService
from closedloop_conversion.ownership.views import TransferView
from closedloop_conversion.sales.policy import day_start
from closedloop_conversion.sales.service import SalesService
from loopkit.errors import DependencyUnavailable, DomainError
from loopkit.periodic import Worker, every
from loopkit.uow import UnitOfWork
from loopkit.wechat.wecom import CustomerTransfers, HandoverResult

log = logging.getLogger(__name__)


class TransferSweeper:
    def __init__(
        self,
        uow: UnitOfWork,
        transfers: TransferService,
        *,
        interval_s: float,
        wecom: CustomerTransfers | None = None,
    ) -> None:
        self._uow = uow
        self._transfers = transfers
        self._handovers = Handovers(transfers)
        self._interval_s = interval_s
        self._wecom = wecom
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """Something was committed (maybe a new transfer): ask WeCom without waiting a round."""
        self._woken.set()

    async def sweep_once(self) -> int:
        """One round; returns how many transfers it ended."""
        if self._wecom is None:
            done = await self._uow.run(lambda s: self._transfers.sweep(s, "", now()))
            if done:
                log.info("completed %d transfers taken over by WeCom", len(done))
            return len(done)
        return await self.ask_wecom() + await self.read_back()

    async def ask_wecom(self) -> int:
        """Asks WeCom about every pending transfer not yet asked about; returns how many WeCom
        refused at once."""
        if self._wecom is None:
            return 0
        claimed = await self._uow.run(lambda s: self._handovers.claim_new(s, now()))
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
            await self._uow.run(lambda s: self._handovers.refuse_all(s, handover, reason, now()))
            return len(handover.transfers)
        except DependencyUnavailable as exc:
            # Unmark, so the next round asks again. (Stopped right here, the transfers stay
            # marked: WeCom then reports no record of them, and they are asked again.)
            log.warning("transfer in %s not asked yet: %s", handover.corp_id, exc)
            await self._uow.run(lambda s: self._handovers.release(s, handover))
            return 0
        return await self._uow.run(
            lambda s: self._handovers.record_answers(s, handover, answers, now())
        )

    async def read_back(self) -> int:
        """Reads WeCom's result of every transfer it was asked about; returns how many ended."""
        if self._wecom is None:
            return 0
        waiting = await self._uow.run(self._handovers.waiting)
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
    ) -> list[TransferView]:
        return await self._uow.run(
            lambda s: self._handovers.record_results(s, handover, results, now())
        )

    def worker(self) -> Worker:
        """A full round every interval; a commit in between asks WeCom about new transfers."""
        return every(
            self._interval_s,
            self.sweep_once,
            name="transfer sweep",
            wake=self._woken,
            on_wake=self.ask_wecom,
        )


# After a failed drain (database down), try again this often until one succeeds; also how late
# after midnight the drain may start.
DAY_START_CHECK_S = 60.0


class DayStartDrain:
    def __init__(self, uow: UnitOfWork, sales: SalesService) -> None:
        self._uow = uow
        self._sales = sales
        # The day of the last drain: the service starting is no new day.
        self._drained = day_start(now())

    async def drain_once(self) -> int:
        """Assigns what the new day allows, one tenant per transaction; returns how many."""
        tenants = await self._uow.run(self._sales.tenants_waiting_on_caps)
        assigned = 0
        for tenant in tenants:
            assigned += await self._uow.run(partial(self._sales.assign_waiting, tenant=tenant))
        return assigned

    async def tick(self) -> None:
        today = day_start(now())
        if today <= self._drained:
            return
        assigned = await self.drain_once()  # raises on an outage: the leads keep waiting
        self._drained = today
        log.info("a new day: %d capped leads assigned", assigned)

    def worker(self) -> Worker:
        return every(DAY_START_CHECK_S, self.tick, name="day-start drain")
