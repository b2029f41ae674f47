"""Background work: the periodic lifecycle sweep and the broadcast dispatcher (each a round of
units of work; `loopkit.periodic` runs them)."""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta

from closedloop_retention.activity.service import ActivityService
from closedloop_retention.broadcasts.service import BroadcastService
from closedloop_retention.broadcasts.views import RecipientView
from closedloop_retention.clock import now
from closedloop_retention.suggestions import service as suggestions
from closedloop_retention.transport.outcomes import broadcast_key
from loopkit.customers import IdentityValue
from loopkit.uow import UnitOfWork
from loopkit.wechat.sender import MessageSender, OutboundMessage, SendRefused

log = logging.getLogger(__name__)
# A claimed recipient not marked within this time goes back in the queue.
STALE_CLAIM = timedelta(minutes=10)


class Workers:
    def __init__(
        self,
        uow: UnitOfWork,
        *,
        activity: ActivityService,
        broadcasts: BroadcastService,
        sender: MessageSender,
        dispatch_batch: int,
    ) -> None:
        self._uow = uow  # wakes the relay only after units that wrote events
        self._activity = activity
        self._broadcasts = broadcasts
        self._sender = sender
        self._batch = dispatch_batch

    async def sweep_all(self) -> int:
        """Recompute stages, churn risk and RFM for every tenant; returns the stage changes."""
        at = now()
        tenants = await self._uow.run(self._activity.tenants)
        changed = 0
        for tenant in tenants:
            changed += await self._uow.run(
                functools.partial(self._activity.sweep_and_score, tenant=tenant, at=at)
            )
        return changed

    async def dispatch(self) -> int:
        """Hands the due broadcast messages to the sender; returns how many went out."""
        at = now()
        await self._uow.run(lambda s: self._broadcasts.requeue_stale(s, at - STALE_CLAIM))
        due = await self._uow.run(lambda s: self._broadcasts.due(s, at, self._batch))
        sent = 0
        for item in due:
            r = item.recipient
            if not await self._claim(r, item.contact_kind):
                continue  # another dispatcher has it
            message = OutboundMessage(
                tenant_id=r.tenant_id,
                customer_id=r.customer_id,
                recipient=IdentityValue(item.contact_kind, item.contact_value, item.contact_scope),
                kind="mass",
                content=await self._render(item.template, r.tenant_id, r.customer_id),
                params={"broadcast_id": r.broadcast_id},
                key=broadcast_key(r.broadcast_id, r.customer_id),
            )
            failure = ""
            message_id = ""
            sent_at: datetime | None = None
            try:
                receipt = await self._sender.send(message)
                message_id, sent_at = receipt.message_id, receipt.sent_at
            except SendRefused as exc:
                failure = "refused"
                log.info("broadcast %s to %s refused: %s", r.broadcast_id, r.customer_id, exc)
            except Exception as exc:  # transient: back in the queue, next tick retries (same key)
                log.warning("broadcast %s to %s failed: %s", r.broadcast_id, r.customer_id, exc)
                await self._uow.run(
                    functools.partial(
                        self._broadcasts.unclaim,
                        broadcast_id=r.broadcast_id,
                        customer_id=r.customer_id,
                    )
                )
                continue

            await self._mark(r, message_id, sent_at, failure, item.contact_kind)
            sent += 0 if failure else 1
        return sent

    async def _claim(self, r: RecipientView, contact_kind: str) -> bool:
        return await self._uow.run(
            lambda s: self._broadcasts.claim(
                s,
                r.broadcast_id,
                r.customer_id,
                now(),
                tenant=r.tenant_id,
                contact_kind=contact_kind,
            )
        )

    async def _render(self, template: str, tenant: str, customer_id: str) -> str:
        text = template.replace("{customer_id}", customer_id)
        if "{suggestion}" in text:
            found = await self._uow.run(
                lambda s: suggestions.for_customer(s, tenant, customer_id, 1)
            )
            text = text.replace("{suggestion}", found[0].name or found[0].sku if found else "")
        return text

    async def _mark(
        self,
        r: RecipientView,
        message_id: str,
        sent_at: datetime | None,
        failure: str,
        channel: str,
    ) -> None:
        await self._uow.run(
            lambda s: self._broadcasts.mark(
                s,
                r.broadcast_id,
                r.customer_id,
                message_id=message_id,
                sent_at=sent_at,
                failure=failure,
                channel=channel,
            )
        )
