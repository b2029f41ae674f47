"""Background work: the callback worker drains stored WeChat messages into touches and
interactions (`loopkit.periodic`, woken by the callback endpoint as a message is stored); the
release worker removes ended contact-me channels' codes at WeCom.

Messages are stored by the HTTP callback in one short transaction and answered at once; this
worker resolves each sender through identity (outside any transaction) and records what the
message means in one unit of work. Unprocessed rows survive a restart: the table is the queue.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import timedelta

from opentelemetry.trace import SpanKind

from closedloop_acquisition.callbacks.service import CallbackService, InboxMessage
from closedloop_acquisition.catalog.codes import RELEASED, ChannelCodes
from closedloop_acquisition.catalog.service import CatalogService
from closedloop_acquisition.clock import now
from closedloop_acquisition.customers.directory import Customers
from loopkit.errors import DependencyUnavailable, DomainError
from loopkit.periodic import Worker, every
from loopkit.tracing import span_from_headers
from loopkit.uow import UnitOfWork

log = logging.getLogger(__name__)
BATCH = 50
MAX_ATTEMPTS = 10
# How long a replica holds an ended channel's code removal (longer than one gateway call).
RELEASE_LEASE = timedelta(minutes=2)


class InboxWorker:
    def __init__(self, uow: UnitOfWork, callbacks: CallbackService, customers: Customers) -> None:
        self._uow = uow
        self._callbacks = callbacks
        self._customers = customers
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def worker(self, poll_interval_s: float) -> Worker:
        return every(poll_interval_s, self.drain, name="callback worker", wake=self._wake)

    async def drain(self) -> None:
        """Full batches back to back, until one is short or identity is away."""
        while await self.drain_once():
            pass

    async def drain_once(self) -> bool:
        """Processes one batch; True when every row of a full batch was handled."""
        async with self._uow.sessions() as session:
            rows = await self._callbacks.pending(session, BATCH)
        for row in rows:
            if not await self._handle(row):
                return False  # identity is away: wait before the next attempt
        return len(rows) == BATCH

    async def _handle(self, row: InboxMessage) -> bool:
        """One message, in the trace of the callback request that stored it."""
        attributes = {"wechat.app_id": row.app_id, "wechat.message": row.kind}
        with span_from_headers(
            f"process wechat {row.kind}",
            row.trace_context,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        ):
            return await self._process(row)

    async def _process(self, row: InboxMessage) -> bool:
        try:
            customer = await self._customers.resolve(row.tenant_id, row.identities)
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
            await self._uow.run(lambda s: self._callbacks.process(s, row.id, customer, now()))
        except DomainError as exc:
            await self._fail(row, str(exc), final=True)
            return True
        except Exception as exc:
            log.exception("callback worker: message %s failed", row.id)
            await self._fail(row, f"{type(exc).__name__}: {exc}", final=False)
            return False
        return True

    async def _fail(
        self, row: InboxMessage, reason: str, *, final: bool, counts: bool = True
    ) -> None:
        final = final or (counts and row.attempts + 1 >= MAX_ATTEMPTS)
        if final:
            log.warning("callback message %s given up: %s", row.id, reason)
        await self._uow.run(
            lambda s: self._callbacks.failed(s, row.id, reason, now(), final=final, counts=counts)
        )


class ContactWayReleaser:
    """Removes the contact-me code of a channel that ended (its expiry or its campaign's end
    passed) at WeCom, once: the channel row is the durable command. Each round finds such
    channels, takes each under a lease (one replica calls WeCom), asks the gateway, and records
    the removal; a gateway outage or refusal drops the lease and the next round tries again."""

    def __init__(self, uow: UnitOfWork, catalog: CatalogService, codes: ChannelCodes) -> None:
        self._uow = uow
        self._catalog = catalog
        self._codes = codes

    def worker(self, interval_s: float) -> Worker:
        return every(interval_s, self.release, name="contact-me code release")

    async def release(self) -> int:
        """One round; returns how many codes were removed."""
        at = now()
        ended = await self._uow.run(
            functools.partial(self._catalog.ended_contact_ways, now=at, limit=BATCH)
        )
        released = 0
        for tenant_id, channel_id, corp_id, config_id in ended:
            taken = await self._uow.run(
                functools.partial(
                    self._catalog.claim_code_release,
                    channel_id=channel_id,
                    now=at,
                    until=now() + RELEASE_LEASE,
                )
            )
            if not taken:
                continue  # another replica has it
            try:
                await self._codes.release_ended(tenant_id, corp_id, config_id)
            except (DependencyUnavailable, DomainError) as exc:
                log.warning(
                    "channel %s: its contact-me code is not removed yet: %s", channel_id, exc
                )
                outcome = None
            else:
                outcome = now()
                released += 1
            await self._uow.run(
                functools.partial(
                    self._catalog.end_code_release,
                    channel_id=channel_id,
                    released_at=outcome,
                    note=RELEASED,
                )
            )
        return released
