"""Background workers: the periodic lifecycle sweep and the broadcast dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop_retention.activity import value
from closedloop_retention.activity.rules import RulesRepository
from closedloop_retention.activity.service import ActivityService
from closedloop_retention.broadcasts.service import BroadcastService
from closedloop_retention.clock import now
from closedloop_retention.models import RecipientRow
from closedloop_retention.suggestions import service as suggestions
from loopkit.customers import IdentityValue
from loopkit.db import transact
from loopkit.wechat.sender import MessageSender, OutboundMessage, SendRefused

log = logging.getLogger(__name__)
# A claimed recipient not marked within this time goes back in the queue.
STALE_CLAIM = timedelta(minutes=10)


class Workers:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        after_commit: Callable[[], None],
        *,
        rules: RulesRepository,
        activity: ActivityService,
        broadcasts: BroadcastService,
        sender: MessageSender,
        dispatch_batch: int,
    ) -> None:
        self._sessions = sessions
        self._after_commit = after_commit
        self._rules = rules
        self._activity = activity
        self._broadcasts = broadcasts
        self._sender = sender
        self._batch = dispatch_batch

    async def sweep_all(self) -> int:
        """Recompute stages, churn risk and RFM for every tenant; returns the stage changes."""
        at = now()
        tenants = await transact(self._sessions, self._rules.tenants)
        changed = 0
        for tenant in tenants:

            async def work(s: AsyncSession, tenant: str = tenant) -> int:
                _, n = await self._activity.sweep(s, tenant, at)
                await value.recompute_rfm(s, tenant)
                return n

            changed += await transact(self._sessions, work, after_commit=self._after_commit)
        return changed

    async def dispatch(self) -> int:
        """Hands the due broadcast messages to the sender; returns how many went out."""
        at = now()
        await transact(
            self._sessions, lambda s: self._broadcasts.requeue_stale(s, at - STALE_CLAIM)
        )
        due = await transact(self._sessions, lambda s: self._broadcasts.due(s, at, self._batch))
        sent = 0
        for item in due:
            r = item.recipient
            if not await self._claim(r):
                continue  # another dispatcher has it
            message = OutboundMessage(
                tenant_id=r.tenant_id,
                customer_id=r.customer_id,
                recipient=IdentityValue(item.contact_kind, item.contact_value, item.contact_scope),
                kind="mass",
                content=await self._render(item.template, r.tenant_id, r.customer_id),
                params={"broadcast_id": r.broadcast_id},
                key=f"broadcast:{r.broadcast_id}:{r.customer_id}",
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
                await self._unclaim(r)
                continue

            await self._mark(r, message_id, sent_at, failure, item.contact_kind)
            sent += 0 if failure else 1
        return sent

    async def _claim(self, r: RecipientRow) -> bool:
        async def work(s: AsyncSession) -> bool:
            return await self._broadcasts.claim(s, r.broadcast_id, r.customer_id, now())

        return await transact(self._sessions, work)

    async def _unclaim(self, r: RecipientRow) -> None:
        async def work(s: AsyncSession) -> None:
            await self._broadcasts.unclaim(s, r.broadcast_id, r.customer_id)

        await transact(self._sessions, work)

    async def _render(self, template: str, tenant: str, customer_id: str) -> str:
        text = template.replace("{customer_id}", customer_id)
        if "{suggestion}" in text:
            found = await transact(
                self._sessions, lambda s: suggestions.for_customer(s, tenant, customer_id, 1)
            )
            text = text.replace("{suggestion}", found[0].name or found[0].sku if found else "")
        return text

    async def _mark(
        self,
        r: RecipientRow,
        message_id: str,
        sent_at: datetime | None,
        failure: str,
        channel: str,
    ) -> None:
        async def work(s: AsyncSession) -> None:
            await self._broadcasts.mark(
                s,
                r.broadcast_id,
                r.customer_id,
                message_id=message_id,
                sent_at=sent_at,
                failure=failure,
                channel=channel,
            )

        await transact(self._sessions, work, after_commit=self._after_commit)


async def run_every(
    interval_s: float, tick: Callable[[], Awaitable[object]], stop: asyncio.Event, *, name: str
) -> None:
    """Calls `tick` every interval until `stop` is set (a runtime worker)."""
    while not stop.is_set():
        try:
            await tick()
        except Exception as exc:
            log.warning("%s failed: %s", name, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
