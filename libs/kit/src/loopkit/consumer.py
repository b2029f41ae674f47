"""Idempotent JetStream consumers.

A durable pull consumer per (service, purpose). Each message is handled in one database
transaction together with an inbox row keyed by event id, then acked: a redelivery after a crash
finds the inbox row and is acked without running the handler again.

Failures are of two kinds. An outage (database restarting or full, NATS or identity away: see
loopkit.outages) is not the message's fault: the message is put back with a capped back-off, the
consumer pauses, and it retries for as long as the outage lasts; such attempts never count. A
poison message (undecodable, a DomainError, or `max_deliver` failures of any other kind seen by
this consumer) goes to the dead-letter stream, where ops can list and replay it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import metrics
from opentelemetry.trace import SpanKind
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop.events.v1.envelope_pb2 import Envelope
from loopkit.errors import Conflict, DomainError
from loopkit.events import decode_envelope, stream_for, subject_for
from loopkit.natsio import DEAD_LETTER_ROOT
from loopkit.outages import is_outage
from loopkit.pii import Opener
from loopkit.tables import KitTables
from loopkit.tracing import span_from_headers

log = logging.getLogger(__name__)
_meter = metrics.get_meter("loopkit.consumer")
_handled = _meter.create_counter(
    "closedloop_events_consumed",
    unit="{event}",
    description="Events taken by a consumer, by outcome",
)
_pending = _meter.create_gauge(
    "closedloop_consumer_pending",
    unit="{event}",
    description="Events waiting for a consumer (its lag), as seen on its last message",
)

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]


@dataclass
class Subscription:
    """What one consumer listens to: a stream, subject filters and a handler per event type."""

    name: str
    stream: str
    subjects: list[str]
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    # The producing service; when set, the runtime creates its stream if it does not exist yet,
    # so a consumer can start before its producer ever has.
    producer: str = ""

    @classmethod
    def to(cls, producer: str, name: str, handlers: Mapping[str, Handler]) -> Subscription:
        """A consumer named `name` of the producer's events listed in `handlers` (by type)."""
        return cls(
            name=name,
            stream=stream_for(producer),
            subjects=[subject_for(producer, event_type) for event_type in handlers],
            handlers=handlers,
            producer=producer,
        )


class EventConsumer:
    def __init__(
        self,
        service: str,
        subscription: Subscription,
        sessions: async_sessionmaker[AsyncSession],
        tables: KitTables,
        js: JetStreamContext,
        *,
        max_deliver: int = 5,
        ack_wait_s: float = 30.0,
        batch_size: int = 100,
        after_commit: Callable[[], None] | None = None,
        first_backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        opener: Opener | None = None,
    ) -> None:
        # Opens sealed personal values before the handlers see them (loopkit.pii), for services
        # whose handlers read them; without one, handlers see the sealed form.
        self._opener = opener
        self.durable = f"{service}-{subscription.name}"
        self._sub_spec = subscription
        self._sessions = sessions
        self._inbox = tables.inbox
        self._js = js
        self._max_deliver = max_deliver
        self._ack_wait_s = ack_wait_s
        self._batch_size = batch_size
        self._after_commit = after_commit
        self._sub: JetStreamContext.PullSubscription | None = None
        self._first_backoff_s = first_backoff_s
        self._max_backoff_s = max_backoff_s
        # While a dependency is out: how long to wait before the next attempt (0 when healthy).
        self.backoff_s = 0.0
        # Failures that were not outages, by stream sequence: what decides a dead letter. Kept in
        # memory, so a restart gives a failing message a fresh count (more tries, never fewer).
        self._strikes: dict[int, int] = {}

    async def start(self) -> None:
        config = ConsumerConfig(
            name=self.durable,
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self._ack_wait_s,
            # Unlimited on the server: this consumer dead-letters by itself after max_deliver,
            # so a poison message is moved aside, not silently dropped by the server.
            max_deliver=-1,
            filter_subjects=self._sub_spec.subjects,
            max_ack_pending=10_000,
        )
        await self._js.add_consumer(self._sub_spec.stream, config)
        self._sub = await self._js.pull_subscribe_bind(
            durable=self.durable, stream=self._sub_spec.stream
        )

    async def poll(self, timeout_s: float = 1.0) -> int:
        """Fetch and handle one batch; returns how many messages were taken."""
        if self._sub is None:
            raise RuntimeError("consumer not started")
        try:
            msgs = await self._sub.fetch(self._batch_size, timeout=timeout_s)
        except (NatsTimeoutError, TimeoutError):  # nats-py raises either when none came
            return 0
        for n, msg in enumerate(msgs):
            await self.handle(msg)
            if self.backoff_s:
                # A dependency is out: the rest of the batch would fail the same way. Put it
                # back untried; none of this counts against the messages.
                for untried in msgs[n + 1 :]:
                    await untried.nak(delay=self.backoff_s)
                break
        return len(msgs)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "consumer %s: fetch failed: %s %s", self.durable, type(exc).__name__, exc
                )
                await _wait(stop, 1.0)
            if self.backoff_s:
                await _wait(stop, self.backoff_s)

    async def handle(self, msg: Msg) -> None:
        headers = msg.headers or {}
        try:
            env = decode_envelope(msg.data)
        except ValueError as exc:
            await self._dead_letter(msg, f"undecodable: {exc}")
            return
        attrs = {
            "messaging.system": "nats",
            "messaging.destination.name": msg.subject,
            "messaging.message.id": env.id,
            "messaging.consumer.group.name": self.durable,
        }
        with span_from_headers(
            f"consume {env.type}", headers, kind=SpanKind.CONSUMER, attributes=attrs
        ):
            try:
                if self._opener is not None:
                    await self._opener.open(env)  # identity away: an outage, retried
                outcome = await self._apply(msg.subject, env)
            except Exception as exc:
                await self._failed(msg, env, exc)
                return
        await msg.ack()
        self.backoff_s = 0.0
        self._strikes.pop(msg.metadata.sequence.stream, None)
        _handled.add(1, {"consumer": self.durable, "outcome": outcome})
        _pending.set(msg.metadata.num_pending, {"consumer": self.durable})
        if outcome == "applied" and self._after_commit is not None:
            self._after_commit()

    async def _apply(self, subject: str, env: Envelope) -> str:
        handler = self._sub_spec.handlers.get(env.type)
        async with self._sessions() as session:
            try:
                async with session.begin():
                    seen = await session.execute(
                        select(self._inbox.c.event_id).where(
                            self._inbox.c.consumer == self.durable,
                            self._inbox.c.event_id == env.id,
                        )
                    )
                    if seen.first() is not None:
                        return "duplicate"
                    await session.execute(
                        insert(self._inbox).values(
                            consumer=self.durable,
                            event_id=env.id,
                            subject=subject,
                            processed_at=datetime.now(UTC),
                        )
                    )
                    if handler is None:
                        return "ignored"
                    await handler(session, env)
            except IntegrityError as exc:
                if "inbox" in str(exc).lower():
                    return "duplicate"  # another replica applied it while we were working
                raise
        return "applied"

    async def _failed(self, msg: Msg, env: Envelope, exc: Exception) -> None:
        seq = msg.metadata.sequence.stream
        if is_outage(exc):
            self.backoff_s = min(
                self._max_backoff_s, max(self._first_backoff_s, 2 * self.backoff_s)
            )
            log.warning(
                "consumer %s: %s %s waits %.1f s for a dependency: %s: %s",
                self.durable,
                env.type,
                env.id,
                self.backoff_s,
                type(exc).__name__,
                exc,
            )
            _handled.add(1, {"consumer": self.durable, "outcome": "outage"})
            await msg.nak(delay=self.backoff_s)
            return
        self.backoff_s = 0.0  # whatever failed, the dependencies answered
        strikes = self._strikes.get(seq, 0) + 1
        permanent = isinstance(exc, DomainError) and not isinstance(exc, Conflict)
        if permanent or strikes >= self._max_deliver:
            self._strikes.pop(seq, None)
            await self._dead_letter(msg, f"{type(exc).__name__}: {exc}", event_id=env.id)
            return
        self._strikes[seq] = strikes
        log.warning(
            "consumer %s: %s %s failed (attempt %d/%d): %s",
            self.durable,
            env.type,
            env.id,
            strikes,
            self._max_deliver,
            exc,
        )
        _handled.add(1, {"consumer": self.durable, "outcome": "failed"})
        await msg.nak(delay=min(30.0, 0.2 * 2**strikes))

    async def _dead_letter(self, msg: Msg, reason: str, *, event_id: str = "") -> None:
        headers = dict(msg.headers or {})
        headers.update(
            {
                "Closedloop-Original-Subject": msg.subject,
                "Closedloop-Consumer": self.durable,
                "Closedloop-Error": reason[:1000],
                "Closedloop-Delivered": str(msg.metadata.num_delivered),
                # Keyed by the stream sequence of this message: a redelivery of it after a crash
                # is dropped as a duplicate, but the same event failing again after a replay (a
                # new message) is dead-lettered again instead of silently acked away.
                "Nats-Msg-Id": (
                    f"dlq:{self.durable}:{event_id or '-'}:{msg.metadata.sequence.stream}"
                ),
            }
        )
        if event_id:
            headers["Closedloop-Event-Id"] = event_id
        await self._js.publish(f"{DEAD_LETTER_ROOT}.{self.durable}", msg.data, headers=headers)
        await msg.ack()
        _handled.add(1, {"consumer": self.durable, "outcome": "dead_lettered"})
        log.error(
            "consumer %s: dead-lettered %s after %d deliveries: %s",
            self.durable,
            event_id or msg.subject,
            msg.metadata.num_delivered,
            reason,
        )


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when the service is stopping."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
