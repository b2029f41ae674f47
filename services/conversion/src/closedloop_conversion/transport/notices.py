"""Rep notices at the edges: the worker that hands due notices to the gateway
(`GatewayClient.notify_member`) and records the answer. (A notice is stored in the transaction
that makes its reason: sales tells `NoticeService.leads_assigned` of every lead it gives.)

Each notice's idempotency key is also the gateway's, so a notice handed over twice (a retry, two
replicas, a crash between the gateway's answer and our commit) is one message to the rep; a notice
the gateway still holds (queued, paused) is asked about again with the same key later.
"""

from __future__ import annotations

import asyncio
import logging

from closedloop_conversion.common import now
from closedloop_conversion.notices.service import (
    FAILED,
    PENDING,
    SENT,
    DueNotice,
    MemberMessenger,
    NoticeService,
)
from loopkit.errors import DependencyUnavailable, DomainError
from loopkit.periodic import Worker, every
from loopkit.uow import UnitOfWork
from loopkit.wechat.sender import SendRefused

log = logging.getLogger(__name__)
# Notices handed to the gateway per round.
BATCH = 50


class RepNotifier:
    def __init__(
        self,
        uow: UnitOfWork,
        notices: NoticeService,
        gateway: MemberMessenger,
        *,
        interval_s: float,
    ) -> None:
        self._uow = uow
        self._notices = notices
        self._gateway = gateway
        self._interval_s = interval_s
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """A commit may have stored a notice: hand it over now, not at the next round."""
        self._woken.set()

    async def tick(self) -> int:
        """One round: every due notice handed to the gateway; returns how many settled."""
        due = await self._uow.run(lambda s: self._notices.claim_due(s, now(), BATCH))
        settled = 0
        for notice in due:
            status, detail = await self._hand_over(notice)
            await self._settle(notice, status, detail)
            settled += status != PENDING
        return settled

    async def _settle(self, notice: DueNotice, status: str, detail: str) -> None:
        await self._uow.run(lambda s: self._notices.settle(s, notice.id, status, detail, now()))

    async def _hand_over(self, notice: DueNotice) -> tuple[str, str]:
        try:
            receipt = await self._gateway.notify_member(
                notice.tenant_id,
                notice.corp_id,
                notice.userid,
                notice.text,
                key=notice.idempotency_key,
            )
        except SendRefused as exc:
            return FAILED, str(exc)
        except DependencyUnavailable as exc:
            log.warning("rep notice %s: gateway unavailable, retrying: %s", notice.id, exc)
            return PENDING, "gateway unavailable; retrying"
        except DomainError as exc:
            return FAILED, str(exc)
        if receipt.status == "sent":
            return SENT, ""
        return PENDING, f"{receipt.status} at the gateway"

    def worker(self) -> Worker:
        return every(self._interval_s, self.tick, name="rep notices", wake=self._woken)
