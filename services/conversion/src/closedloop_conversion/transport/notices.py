"""Rep notices at the edges: the worker that hands due notices to the gateway
(`GatewayClient.notify_member`) and records the answer, and the consumer of conversion's own
`lead.assigned` that stores a notice for an assignment that came without one. (A notice is stored
in the transaction that makes its reason: sales tells `NoticeService.leads_assigned` of every lead
it gives; the consumer finds those keys stored and writes nothing.)

Each notice's idempotency key is also the gateway's, so a notice handed over twice (a retry, two
replicas, a crash between the gateway's answer and our commit) is one message to the rep; a notice
the gateway still holds (queued, paused) is asked about again with the same key later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1 import conversion_events_pb2 as ev
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop_conversion.common import now
from closedloop_conversion.notices.service import (
    FAILED,
    PENDING,
    SENT,
    TOLD_HEADER,
    Assigned,
    DueNotice,
    MemberMessenger,
    NoticeService,
)
from loopkit.consumer import Subscription
from loopkit.envelopes import occurred_at, payload
from loopkit.errors import DependencyUnavailable, DomainError
from loopkit.periodic import Worker, every
from loopkit.uow import UnitOfWork
from loopkit.wechat.sender import SendRefused

log = logging.getLogger(__name__)
# Notices handed to the gateway per round.
BATCH = 50
# lead.assigned events per fetched batch: one per lead the leads consumer assigns, so as many.
NOTICES_BATCH = 500


def assignment_subscription(notices: NoticeService) -> Subscription:
    """The safety net behind the in-transaction notice: an assignment published by a replica of
    an earlier release (before notices were stored with the assignment; a rolling upgrade runs
    both) still tells its rep. An event whose transaction told the notices (`TOLD_HEADER`, every
    assignment this release makes) is acked unopened: its fetch and ack, no decode, no inbox
    row, no query. For the others, per fetched batch the stored keys are one query."""

    async def assigned(session: AsyncSession, envs: Sequence[Envelope]) -> None:
        items = []
        for env in envs:
            event = payload(env, ev.LeadAssigned)
            if not event.lead_id or not event.rep_id:
                continue
            items.append(
                Assigned(
                    env.tenant_id,
                    event.lead_id[:64],
                    event.rep_id[:64],
                    # A reassignment is news again: its own key (the event's id).
                    reassignment_id=env.id if event.previous_rep_id else "",
                    at=occurred_at(env, now),
                )
            )
        await notices.leads_assigned(session, items)

    return Subscription.to(
        "conversion",
        "rep-notices",
        {},
        batch_handlers={"lead.assigned": assigned},
        batch_size=NOTICES_BATCH,
        skip_header=TOLD_HEADER,
    )


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
