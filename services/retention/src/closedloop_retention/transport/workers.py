"""Background work: the periodic lifecycle sweep and the broadcast dispatcher (each a round of
units of work; `loopkit.periodic` runs them)."""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.activity.service import REVIEW_BATCH, ActivityService
from closedloop_retention.broadcasts.service import BroadcastService
from closedloop_retention.broadcasts.views import Due
from closedloop_retention.clock import now
from closedloop_retention.suggestions import service as suggestions
from closedloop_retention.transport.outcomes import broadcast_key
from loopkit.customers import IdentityValue
from loopkit.uow import UnitOfWork
from loopkit.wechat.sender import (
    MAX_BATCH,
    MessageSender,
    OutboundMessage,
    SendReceipt,
    SendRefused,
    outside_service_window,
)

log = logging.getLogger(__name__)
# A claimed recipient not marked within this time goes back in the queue.
STALE_CLAIM = timedelta(minutes=10)
# Why a recipient outside WeChat's 48-hour window got nothing (the broadcast has no template).
WINDOW_CLOSED = "window_closed"


async def review_tenant(
    uow: UnitOfWork,
    activity: ActivityService,
    tenant: str,
    at: datetime,
    *,
    batch: int = REVIEW_BATCH,
) -> tuple[int, int]:
    """The tenant's pending full review (a rules change's) run to its end, a keyset batch per
    unit of work; stops early when another process holds the review's batch (it carries on
    there). Returns (customers reviewed, stage changes); (0, 0) when none is pending."""
    examined = changed = 0
    while True:
        step = await uow.run(
            functools.partial(activity.review_step, tenant=tenant, at=at, batch=batch)
        )
        if step is None:
            return examined, changed
        examined, changed = examined + step.examined, changed + step.changed
        if step.finished:
            return examined, changed


class Workers:
    def __init__(
        self,
        uow: UnitOfWork,
        *,
        activity: ActivityService,
        broadcasts: BroadcastService,
        sender: MessageSender,
        page_size: int = MAX_BATCH,
    ) -> None:
        self._uow = uow  # wakes the relay only after units that wrote events
        self._activity = activity
        self._broadcasts = broadcasts
        self._sender = sender
        # Recipients claimed and handed to the sender at once (the gateway takes 500 a call).
        self._page = max(1, min(page_size, MAX_BATCH))

    async def sweep_all(self) -> int:
        """The full reviews rules changes asked for, then stages, churn risk and RFM recomputed
        for every tenant; returns the stage changes."""
        changed = await self.review_pending()
        at = now()
        tenants = await self._uow.run(self._activity.tenants)
        for tenant in tenants:
            changed += await self._uow.run(
                functools.partial(self._activity.sweep_and_score, tenant=tenant, at=at)
            )
        return changed

    async def review_pending(self, at: datetime | None = None, *, batch: int = REVIEW_BATCH) -> int:
        """Every customer of a tenant whose rules changed reviewed under them, a keyset batch
        per unit of work (another process's batch under way: left to it); returns the stage
        changes."""
        at = at or now()
        changed = 0
        for tenant in await self._uow.run(self._activity.reviews_wanted):
            changed += (await review_tenant(self._uow, self._activity, tenant, at, batch=batch))[1]
        return changed

    async def dispatch(self) -> int:
        """Hands the due broadcast messages to the sender, a page at a time (one `send_many`
        call per tenant and page: the gateway's SendMessages); returns how many went out."""
        at = now()
        await self._uow.run(lambda s: self._broadcasts.requeue_stale(s, at - STALE_CLAIM))
        sent = 0
        while True:
            due = await self._uow.run(lambda s: self._broadcasts.due(s, at, self._page))
            claimed = await self._uow.run(functools.partial(self._claim_all, due=due))
            by_tenant: dict[str, list[Due]] = defaultdict(list)
            for item in claimed:
                by_tenant[item.recipient.tenant_id].append(item)
            for items in by_tenant.values():
                handed = await self._send_page(items)
                if handed is None:
                    return sent  # transient: the rest waits for the next tick
                sent += handed
            if len(due) < self._page:
                return sent

    async def _claim_all(self, session: AsyncSession, due: list[Due]) -> list[Due]:
        """The due recipients this dispatcher takes (consent and unsubscribe read again now)."""
        claimed = []
        for item in due:
            r = item.recipient
            if await self._broadcasts.claim(
                session,
                r.broadcast_id,
                r.customer_id,
                now(),
                tenant=r.tenant_id,
                contact_kind=item.contact_kind,
            ):
                claimed.append(item)
        return claimed

    async def _send_page(self, items: list[Due]) -> int | None:
        """One tenant's claimed recipients in one `send_many`; how many were handed over, or
        None when the sender failed transiently (all of them go back in the queue, same keys).
        A recipient outside WeChat's 48-hour window gets the broadcast's template message, or
        is skipped ("window_closed") when it has none."""
        at = now()
        sendable: list[Due] = []
        messages: list[OutboundMessage] = []
        closed: list[Due] = []
        for item in items:
            message = await self._compose(item, at)
            if message is None:
                closed.append(item)
            else:
                sendable.append(item)
                messages.append(message)
        if closed:
            await self._uow.run(functools.partial(self._skip_all, items=closed))
        items = sendable
        if not items:
            return 0
        try:
            results = await self._sender.send_many(messages)
        except Exception as exc:  # transient: back in the queue, next tick retries (same keys)
            log.warning("broadcast page of %d failed: %s", len(items), exc)
            await self._uow.run(functools.partial(self._unclaim_all, items=items))
            return None
        await self._uow.run(functools.partial(self._mark_all, items=items, results=results))
        return sum(1 for r in results if not isinstance(r, SendRefused))

    async def _compose(self, item: Due, at: datetime) -> OutboundMessage | None:
        """The recipient's message: the text, or outside the 48-hour window the template
        message (None when the broadcast has none)."""
        r = item.recipient
        kind, params = "mass", {"broadcast_id": r.broadcast_id}
        if outside_service_window(item.contact_kind, item.last_interaction_at, at):
            if not item.wechat_template_id:
                return None
            kind = "template"
            params["template_id"] = item.wechat_template_id
            for name, value in item.wechat_template_data.items():
                params[f"data.{name}"] = await self._render(value, r.tenant_id, r.customer_id)
        return OutboundMessage(
            tenant_id=r.tenant_id,
            customer_id=r.customer_id,
            recipient=IdentityValue(item.contact_kind, item.contact_value, item.contact_scope),
            kind=kind,
            content=await self._render(item.template, r.tenant_id, r.customer_id),
            params=params,
            key=broadcast_key(r.broadcast_id, r.customer_id),
        )

    async def _skip_all(self, session: AsyncSession, items: list[Due]) -> None:
        for item in items:
            r = item.recipient
            log.info(
                "broadcast %s to %s: outside the 48-hour window", r.broadcast_id, r.customer_id
            )
            await self._broadcasts.skip_claimed(
                session, r.broadcast_id, r.customer_id, WINDOW_CLOSED
            )

    async def _unclaim_all(self, session: AsyncSession, items: list[Due]) -> None:
        for item in items:
            r = item.recipient
            await self._broadcasts.unclaim(session, r.broadcast_id, r.customer_id)

    async def _mark_all(
        self, session: AsyncSession, items: list[Due], results: list[SendReceipt | SendRefused]
    ) -> None:
        for item, result in zip(items, results, strict=True):
            r = item.recipient
            if isinstance(result, SendRefused):
                log.info("broadcast %s to %s refused: %s", r.broadcast_id, r.customer_id, result)
            await self._broadcasts.mark(
                session,
                r.broadcast_id,
                r.customer_id,
                message_id="" if isinstance(result, SendRefused) else result.message_id,
                sent_at=None if isinstance(result, SendRefused) else result.sent_at,
                failure="refused" if isinstance(result, SendRefused) else "",
                channel=item.contact_kind,
            )

    async def _render(self, template: str, tenant: str, customer_id: str) -> str:
        text = template.replace("{customer_id}", customer_id)
        if "{suggestion}" in text:
            found = await self._uow.run(
                lambda s: suggestions.for_customer(s, tenant, customer_id, 1)
            )
            text = text.replace("{suggestion}", found[0].name or found[0].sku if found else "")
        return text
