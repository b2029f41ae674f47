"""The win-back dispatcher: hands due offers to the sender (the gateway), one unit of work per
step, like the broadcast dispatcher (`loopkit.periodic` runs it)."""

from __future__ import annotations

import functools
import logging
from datetime import timedelta

from closedloop_retention.clock import now
from closedloop_retention.consent.service import ConsentService
from closedloop_retention.transport.outcomes import win_back_key
from closedloop_retention.winback import message
from closedloop_retention.winback.service import WinBackService
from loopkit.uow import UnitOfWork
from loopkit.wechat.sender import MessageSender, SendRefused

log = logging.getLogger(__name__)
# A claimed offer not marked within this time goes back in the queue.
STALE_CLAIM = timedelta(minutes=10)


class OfferDispatcher:
    def __init__(
        self,
        uow: UnitOfWork,
        *,
        offers: WinBackService,
        consent: ConsentService,
        sender: MessageSender,
        batch: int,
        text: str = message.DEFAULT_TEXT,
        template_id: str = "",
    ) -> None:
        self._uow = uow
        self._offers = offers
        self._consent = consent
        self._sender = sender
        self._batch = batch
        self._text = text
        self._template_id = template_id

    async def dispatch(self) -> int:
        """Sends the due win-back offers; returns how many went out."""
        at = now()
        await self._uow.run(lambda s: self._offers.requeue_stale(s, at - STALE_CLAIM))
        due = await self._uow.run(lambda s: self._offers.due(s, self._batch))
        sent = 0
        for item in due:
            offer = item.offer
            if not await self._uow.run(functools.partial(self._offers.claim, due=item, now=now())):
                continue  # skipped (consent, contact) or another dispatcher has it
            url, _ = self._consent.link(offer.tenant_id, offer.customer_id)
            composed = message.compose(
                item,
                text=self._text,
                template_id=self._template_id,
                unsubscribe_url=url,
                key=win_back_key(offer.id),
                now=now(),
            )
            if isinstance(composed, str):
                await self._uow.run(
                    functools.partial(self._offers.skip, offer_id=offer.id, reason=composed)
                )
                continue
            try:
                receipt = await self._sender.send(composed)
            except SendRefused as exc:
                log.info("win-back %s refused: %s", offer.id, exc)
                await self._uow.run(
                    functools.partial(
                        self._offers.mark,
                        offer_id=offer.id,
                        message_id="",
                        sent_at=None,
                        failure="refused",
                    )
                )
                continue
            except Exception as exc:  # transient: back in the queue, the next tick retries
                log.warning("win-back %s failed: %s", offer.id, exc)
                await self._uow.run(functools.partial(self._offers.unclaim, offer_id=offer.id))
                continue
            await self._uow.run(
                functools.partial(
                    self._offers.mark,
                    offer_id=offer.id,
                    message_id=receipt.message_id,
                    sent_at=receipt.sent_at,
                )
            )
            sent += 1
        return sent
