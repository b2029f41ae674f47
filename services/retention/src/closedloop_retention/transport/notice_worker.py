"""The notice worker: hands due notices (fission rewards' messages) to the sender — the gateway,
which stores each under its key so nothing goes out twice — one unit of work per step, like the
broadcast dispatcher (`loopkit.periodic` runs it)."""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta

from closedloop_retention.clock import now
from closedloop_retention.notices.service import NoticeService
from loopkit.customers import IdentityValue
from loopkit.uow import UnitOfWork
from loopkit.wechat.sender import MessageSender, OutboundMessage, SendRefused

log = logging.getLogger(__name__)
# A claimed notice not marked within this time (its worker died) goes back in the queue.
STALE_CLAIM = timedelta(minutes=10)


class NoticeWorker:
    def __init__(
        self, uow: UnitOfWork, notices: NoticeService, sender: MessageSender, *, batch: int
    ) -> None:
        self._uow = uow
        self._notices = notices
        self._sender = sender
        self._batch = batch

    async def dispatch(self) -> int:
        """Sends the due notices; returns how many went out."""
        await self._uow.run(lambda s: self._notices.requeue_stale(s, now() - STALE_CLAIM))
        due = await self._uow.run(lambda s: self._notices.due(s, self._batch))
        sent = 0
        for notice in due:
            # Consent, unsubscribe and the contact are read again in the claim.
            claimed = await self._uow.run(
                functools.partial(self._notices.claim, notice_id=notice.id, at=now())
            )
            if claimed is None:
                continue  # another worker has it, or it was skipped
            message = OutboundMessage(
                tenant_id=notice.tenant_id,
                customer_id=notice.customer_id,
                recipient=IdentityValue(
                    claimed.contact_kind, claimed.contact_value, claimed.contact_scope
                ),
                kind="text",
                content=notice.content,
                params={"notice": notice.kind},
                # Always set on a notice still to send (only a finished one's key expires); the
                # notice's id would still make the send once.
                key=notice.idempotency_key or f"notice:{notice.id}",
            )
            try:
                receipt = await self._sender.send(message)
            except SendRefused as exc:
                log.info("notice %s to %s refused: %s", notice.id, notice.customer_id, exc)
                await self._mark(notice.id, "", None, "refused")
                continue
            except Exception as exc:  # transient: back in the queue, the next tick retries
                log.warning("notice %s to %s failed: %s", notice.id, notice.customer_id, exc)
                await self._uow.run(functools.partial(self._notices.unclaim, notice_id=notice.id))
                continue
            await self._mark(notice.id, receipt.message_id, receipt.sent_at, "")
            sent += 1
        return sent

    async def _mark(
        self, notice_id: str, message_id: str, sent_at: datetime | None, failure: str
    ) -> None:
        await self._uow.run(
            functools.partial(
                self._notices.mark,
                notice_id=notice_id,
                message_id=message_id,
                sent_at=sent_at,
                failure=failure,
            )
        )
