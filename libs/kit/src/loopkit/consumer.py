"""Idempotent JetStream consumers.

A durable pull consumer per (service, purpose). Each fetched batch is handled in one database
transaction: the batch's inbox rows (keyed by event id) in one statement, then each new message's
handler, then the commit, then the acks; the next batch is fetched meanwhile. A redelivery after a
crash finds the inbox row and is acked without running the handler again. The first pass over a
batch takes no savepoints; when a handler fails, the transaction rolls back and the batch is
applied again with each message in a savepoint of its own, so the failing message fails alone,
without losing the others' work (see `EventConsumer._apply_batch`).

An event type may instead have a batch handler (`Subscription.batch_handlers`): it receives the
new envelopes of a run of that type in the batch at once, so it can read shared state and lock
once and write with multi-row statements. When it fails (not an outage), each of those messages
is applied again alone, in a savepoint of its own, by the same handler given a list of one: a
poison message still fails alone.

A subscription may name a header (`Subscription.skip_header`) that marks messages whose producer
already did this consumer's work in the transaction that wrote them: those are acked unopened.
Batches are fetched and acked through `loopkit.jetstream` (nats-py's protocol, without its
per-message tasks and frames).

Failures are of two kinds. An outage (database restarting or full, NATS or identity away: see
loopkit.outages) is not the message's fault: the message is put back with a capped back-off, the
consumer pauses, and it retries for as long as the outage lasts; such attempts never count. A
poison message (undecodable, a DomainError, or `max_deliver` failures of any other kind seen by
this consumer) goes to the dead-letter stream, where ops can list and replay it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import metrics
from opentelemetry.trace import SpanKind
from sqlalchemy import DateTime, Executable, String, Table, bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop.events.v1.envelope_pb2 import Envelope
from loopkit.db import COMMIT_EFFECTS, is_contention  # COMMIT_EFFECTS: what `on_commit` appends to
from loopkit.errors import Conflict, DomainError
from loopkit.events import decode_envelope, stream_for, subject_for
from loopkit.jetstream import ack_all, fetch
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
# Receives the new (not yet seen) envelopes of a batch that share one event type, in stream order.
BatchHandler = Callable[[AsyncSession, Sequence[Envelope]], Awaitable[None]]


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
    # Event types applied a batch at a time (opt-in per type; see the module's docstring). A type
    # listed here is not looked up in `handlers`.
    batch_handlers: Mapping[str, BatchHandler] = field(default_factory=dict)
    # Messages fetched (and applied in one transaction) at a time; 0: the service's
    # CLOSEDLOOP_CONSUMER_BATCH_SIZE. A consumer whose batch handlers pay per batch (a lock, a
    # read, a statement per table) sets a larger one. CLOSEDLOOP_CONSUMER_BATCH_SIZES (by name),
    # or CLOSEDLOOP_CONSUMER_BATCH_SIZE when set, overrides it (`runtime.consumer_batch_size`).
    batch_size: int = 0
    # (header, value): a message carrying it was already settled for this consumer by the
    # transaction that wrote it (a safety net's work done at the source), so it is acked unopened:
    # no decode, no inbox row, no handler, and no transaction when the whole batch is such.
    # Messages without it (an older producer's, a replay's) are handled as usual.
    skip_header: tuple[str, str] | None = None

    @classmethod
    def to(
        cls,
        producer: str,
        name: str,
        handlers: Mapping[str, Handler],
        *,
        batch_handlers: Mapping[str, BatchHandler] | None = None,
        batch_size: int = 0,
        skip_header: tuple[str, str] | None = None,
    ) -> Subscription:
        """A consumer named `name` of the producer's events listed in `handlers` and
        `batch_handlers` (by type)."""
        batched = dict(batch_handlers or {})
        types = [*batched, *(t for t in handlers if t not in batched)]
        return cls(
            name=name,
            stream=stream_for(producer),
            subjects=[subject_for(producer, event_type) for event_type in types],
            handlers=handlers,
            producer=producer,
            batch_handlers=batched,
            batch_size=batch_size,
            skip_header=skip_header,
        )


@dataclass
class _Delivery:
    """A decoded message of a batch and what became of it in the batch's transaction."""

    msg: Msg
    env: Envelope
    outcome: str = ""  # applied | duplicate | ignored (acked after the commit)
    error: Exception | None = None  # the handler failed: settled by `_failed` after the commit
    # What the first, savepoint-less pass over the batch learnt (see `_apply_batch`): this
    # message's own handler failed with `suspect`; or its run of a batch-handled type failed, so
    # the careful pass applies the run's messages one by one at once.
    suspect: Exception | None = None
    split: bool = False


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
        msgs = await self._fetch(timeout_s)
        if msgs:
            await self.handle_batch(msgs)
        return len(msgs)

    async def _fetch(self, timeout_s: float = 1.0) -> list[Msg]:
        if self._sub is None:
            raise RuntimeError("consumer not started")
        try:
            if self._batch_size > 1:  # the kit's lean fetch (loopkit.jetstream)
                return await fetch(self._sub, self._batch_size, timeout_s)
            return await self._sub.fetch(self._batch_size, timeout=timeout_s)
        except (NatsTimeoutError, TimeoutError):  # nats-py raises either when none came
            return []

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch and handle batches until `stop` is set. While a batch is applied, the next one
        is fetched (its NATS round trip overlaps the database's); a batch fetched ahead is put
        back (nak) when an outage begins or the loop stops, so nothing waits out `ack_wait`."""
        ahead: asyncio.Task[list[Msg]] | None = None
        try:
            while not stop.is_set():
                try:
                    fetching, ahead = ahead, None
                    msgs = await (fetching if fetching is not None else self._fetch())
                    if msgs:
                        ahead = asyncio.create_task(self._fetch())
                        await self.handle_batch(msgs)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning(
                        "consumer %s: fetch failed: %s %s", self.durable, type(exc).__name__, exc
                    )
                    await _wait(stop, 1.0)
                if self.backoff_s:
                    if ahead is not None:  # a dependency is out: the next batch goes back too
                        fetching, ahead = ahead, None
                        await self._put_back(fetching, self.backoff_s)
                    await _wait(stop, self.backoff_s)
        finally:
            if ahead is not None:
                await self._put_back(ahead, 0.0)

    async def _put_back(self, fetching: asyncio.Task[list[Msg]], delay_s: float) -> None:
        """Nak what a fetch made ahead took (waiting for it: at most its fetch timeout)."""
        try:
            msgs = await asyncio.shield(fetching)
            for msg in msgs:
                await msg.nak(delay=delay_s)
        except (asyncio.CancelledError, Exception) as exc:  # redelivered after ack_wait then
            log.info("consumer %s: a batch fetched ahead was not put back: %r", self.durable, exc)

    async def handle(self, msg: Msg) -> None:
        await self.handle_batch([msg])

    async def handle_batch(self, msgs: list[Msg]) -> None:
        """Apply the messages in one transaction, then ack (or nak, or dead-letter) each."""
        if self._sub_spec.skip_header is not None:
            msgs = await self._skip_settled(msgs, self._sub_spec.skip_header)
        deliveries = []
        for msg in msgs:
            try:
                deliveries.append(_Delivery(msg, decode_envelope(msg.data)))
            except ValueError as exc:
                await self._dead_letter(msg, f"undecodable: {exc}")
        if not deliveries:
            return
        try:
            try:
                await self._apply_batch(deliveries, careful=False)
            except Exception as exc:
                if is_outage(exc):
                    raise
                # Something failed and took the transaction with it: again, a savepoint per
                # message (or run), so that only the culprit fails.
                await self._apply_batch(deliveries, careful=True)
        except Exception as exc:
            if is_outage(exc):
                # Nothing committed, so nothing failed for its own sake: every message goes back
                # (a failure seen earlier in the batch counts no strike either).
                await self._failed(deliveries[0].msg, deliveries[0].env, exc)
                for delivery in deliveries[1:]:
                    await delivery.msg.nak(delay=self.backoff_s)
                if len(deliveries) > 1:
                    outage = {"consumer": self.durable, "outcome": "outage"}
                    _handled.add(len(deliveries) - 1, outage)
                return
            if len(deliveries) > 1:
                # The batch failed as a whole (at its commit, say): find the culprit alone.
                for n, delivery in enumerate(deliveries):
                    await self.handle_batch([delivery.msg])
                    if self.backoff_s:  # an outage began: the rest goes back untried
                        for untried in deliveries[n + 1 :]:
                            await untried.msg.nak(delay=self.backoff_s)
                        break
                return
            await self._failed(deliveries[0].msg, deliveries[0].env, exc)
            return
        self.backoff_s = 0.0
        outcomes: Counter[str] = Counter()
        done: list[Msg] = []
        for delivery in deliveries:
            if delivery.error is not None:
                await self._failed(delivery.msg, delivery.env, delivery.error)
                continue
            done.append(delivery.msg)
            if self._strikes:  # (reading a message's sequence parses its reply subject)
                self._strikes.pop(delivery.msg.metadata.sequence.stream, None)
            outcomes[delivery.outcome] += 1
        await ack_all(self._js._nc, done)
        for outcome, n in outcomes.items():
            _handled.add(n, {"consumer": self.durable, "outcome": outcome})
        _pending.set(deliveries[-1].msg.metadata.num_pending, {"consumer": self.durable})
        if outcomes["applied"] and self._after_commit is not None:
            self._after_commit()  # one relay wake-up for the batch

    async def _skip_settled(self, msgs: list[Msg], skip: tuple[str, str]) -> list[Msg]:
        """Ack the messages whose headers say they were settled at the source (`skip_header`);
        returns the others."""
        name, value = skip
        rest, skipped = [], []
        for msg in msgs:
            headers = msg.headers
            if headers is not None and headers.get(name) == value:
                skipped.append(msg)
            else:
                rest.append(msg)
        if skipped:
            await ack_all(self._js._nc, skipped)
            _handled.add(len(skipped), {"consumer": self.durable, "outcome": "skipped"})
            if not rest:
                _pending.set(msgs[-1].metadata.num_pending, {"consumer": self.durable})
        return rest

    async def _apply_batch(self, deliveries: list[_Delivery], *, careful: bool) -> None:
        """One transaction: the batch's inbox rows, then each new message's handler (a run of
        consecutive new messages of a batch-handled type: its batch handler, once), the commit.

        The first pass (`careful=False`) takes no savepoints, so a batch whose handlers all
        succeed costs no SAVEPOINT / RELEASE round trips. A handler failing there (not an
        outage) marks its message, or its run, and rolls the whole transaction back; then
        `handle_batch` makes the careful pass: each new message in a savepoint of its own (a run
        in one, or one per message when the first pass saw the run fail), so a message whose
        handler fails rolls back to its savepoint (its writes and its `on_commit` effects are
        gone, the others' stay) and is settled after the commit. A message whose own handler
        failed in the first pass (not in the database) is not run again: it fails with that
        error. An outage raises
        and rolls the whole batch back, in either pass.
        """
        for delivery in deliveries:
            delivery.outcome, delivery.error = "", None
        batched = self._sub_spec.batch_handlers
        async with self._sessions() as session, session.begin():
            fresh = await self._claim(session, deliveries)
            run: list[_Delivery] = []  # consecutive new messages of one batch-handled type
            for delivery in deliveries:
                if delivery.env.id not in fresh:
                    delivery.outcome = "duplicate"
                    continue
                fresh.discard(delivery.env.id)  # the same event twice in one batch: apply once
                if delivery.env.type in batched:
                    if run and run[0].env.type != delivery.env.type:
                        await self._apply_run(session, run, batched[run[0].env.type], careful)
                        run = []
                    run.append(delivery)
                    continue
                if run:  # stream order is kept across types
                    await self._apply_run(session, run, batched[run[0].env.type], careful)
                    run = []
                handler = self._sub_spec.handlers.get(delivery.env.type)
                if handler is None:
                    delivery.outcome = "ignored"
                    continue
                await self._apply_one(session, delivery, handler, careful)
            if run:
                await self._apply_run(session, run, batched[run[0].env.type], careful)
            failed = [d.env.id for d in deliveries if d.error is not None]
            if failed:  # they will come again: no inbox row may turn them away
                await session.execute(
                    delete(self._inbox).where(
                        self._inbox.c.consumer == self.durable, self._inbox.c.event_id.in_(failed)
                    )
                )

    async def _claim(self, session: AsyncSession, deliveries: list[_Delivery]) -> set[str]:
        """Write the batch's inbox rows in one statement; returns the event ids not seen before.

        ON CONFLICT DO NOTHING waits for a replica inserting the same row to finish, so an event
        that replica applies comes back here as seen; rows go in event id order so two replicas
        with overlapping batches take the row locks in the same order. The statement is built
        once (`_claims`) and takes the batch as parameters, so SQLAlchemy compiles it once: a
        multi-row VALUES built per batch was compiled afresh every time.
        """
        subjects = {d.env.id: d.msg.subject for d in deliveries}
        ids = sorted(subjects)
        now = datetime.now(UTC)
        if session.get_bind().dialect.name == "postgresql":
            params: dict[str, object] | list[dict[str, object]] = {
                "consumer": self.durable,
                "ids": ids,
                "subjects": [subjects[event_id] for event_id in ids],
                "at": now,
            }
            claimed = await session.execute(_claims(self._inbox).postgresql, params)
        else:  # an executemany with RETURNING: SQLAlchemy's one multi-row INSERT per page
            params = [
                {
                    "consumer": self.durable,
                    "event_id": event_id,
                    "subject": subjects[event_id],
                    "processed_at": now,
                }
                for event_id in ids
            ]
            claimed = await session.execute(_claims(self._inbox).other, params)
        return set(claimed.scalars())

    async def _apply_run(
        self, session: AsyncSession, run: list[_Delivery], handler: BatchHandler, careful: bool
    ) -> None:
        """A run of one batch-handled type: all at once (in the careful pass, in one savepoint);
        when that fails (not an outage), each message again alone in a savepoint of its own, so
        only the culprit fails. One span for the run, linked to each message's trace."""

        async def one(session: AsyncSession, env: Envelope) -> None:
            await handler(session, [env])

        if len(run) == 1 or (careful and run[0].split):
            for delivery in run:
                await self._apply_one(session, delivery, one, careful)
            return
        first = run[0]
        attrs = {
            "messaging.system": "nats",
            "messaging.destination.name": first.msg.subject,
            "messaging.message.id": first.env.id,
            "messaging.consumer.group.name": self.durable,
            "messaging.batch.message_count": str(len(run)),
        }
        effects: list[object] = session.info.setdefault(COMMIT_EFFECTS, [])
        effects_before = len(effects)
        with span_from_headers(
            f"consume {first.env.type}",
            first.msg.headers,
            kind=SpanKind.CONSUMER,
            attributes=attrs,
            linked=[delivery.msg.headers for delivery in run[1:]],
        ):
            try:
                async with session.begin_nested() if careful else contextlib.nullcontext():
                    if self._opener is not None:
                        for delivery in run:
                            await self._opener.open(delivery.env)
                    await handler(session, [delivery.env for delivery in run])
            except Exception as exc:
                if is_outage(exc):
                    raise
                if not careful:  # the transaction is lost: the careful pass splits the run
                    for delivery in run:
                        delivery.split = True
                    raise
                del effects[effects_before:]
                log.info(
                    "consumer %s: a batch of %d %s failed (%s: %s); applying them one by one",
                    self.durable,
                    len(run),
                    first.env.type,
                    type(exc).__name__,
                    exc,
                )
            else:
                for delivery in run:
                    delivery.outcome = "applied"
                return
        for delivery in run:
            await self._apply_one(session, delivery, one, careful)

    async def _apply_one(
        self, session: AsyncSession, delivery: _Delivery, handler: Handler, careful: bool
    ) -> None:
        """One message's handler, in its own span (and, in the careful pass, savepoint)."""
        msg, env = delivery.msg, delivery.env
        if careful and delivery.suspect is not None:
            delivery.error = delivery.suspect  # it failed by itself in the first pass: settled
            return
        attrs = {
            "messaging.system": "nats",
            "messaging.destination.name": msg.subject,
            "messaging.message.id": env.id,
            "messaging.consumer.group.name": self.durable,
        }
        effects: list[object] = session.info.setdefault(COMMIT_EFFECTS, [])
        effects_before = len(effects)
        with span_from_headers(
            f"consume {env.type}", msg.headers, kind=SpanKind.CONSUMER, attributes=attrs
        ):
            try:
                async with session.begin_nested() if careful else contextlib.nullcontext():
                    # The step per message: opening sealed personal data (loopkit.pii) fails
                    # alone too; identity away is an outage, retried with the batch.
                    if self._opener is not None:
                        await self._opener.open(env)
                    await handler(session, env)
            except Exception as exc:
                if is_outage(exc):
                    raise
                if not careful:  # the transaction is lost: the careful pass settles this one
                    # ...without running it again, unless the database refused a statement: a
                    # handler before it that swallowed an error may have aborted the transaction
                    # (PostgreSQL then refuses everything), so its own savepoint decides.
                    if not isinstance(exc, DBAPIError):
                        delivery.suspect = exc
                    raise
                # The savepoint rolled back; SQLAlchemy keeps the session's after-commit
                # effects through a savepoint rollback, so drop the ones this message added.
                del effects[effects_before:]
                delivery.error = exc
                return
        delivery.outcome = "applied"

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
        if is_contention(exc):
            # A deadlock with another replica's batch is timing, not the event's fault: tried
            # again soon (jittered, so the two batches part) and no strike, or a good event that
            # met the same batch max_deliver times would be dead-lettered.
            log.info("consumer %s: %s %s contended: %s", self.durable, env.type, env.id, exc)
            _handled.add(1, {"consumer": self.durable, "outcome": "contended"})
            await msg.nak(delay=random.uniform(0.05, 0.5))
            return
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


@dataclass(frozen=True)
class _Claims:
    """The inbox claim of a batch, per dialect (see `EventConsumer._claim`)."""

    postgresql: Executable
    other: Executable


@functools.cache
def _claims(inbox: Table) -> _Claims:
    columns = ["consumer", "event_id", "subject", "processed_at"]
    rows = (
        func.unnest(
            bindparam("ids", type_=ARRAY(String)), bindparam("subjects", type_=ARRAY(String))
        )
        .table_valued("event_id", "subject")
        .render_derived(with_types=False)
    )
    batch = select(
        bindparam("consumer", type_=String),
        rows.c.event_id,
        rows.c.subject,
        bindparam("at", type_=DateTime(timezone=True)),
    ).order_by(rows.c.event_id)
    return _Claims(
        postgresql=pg_insert(inbox)
        .from_select(columns, batch)
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
        .returning(inbox.c.event_id),
        other=sqlite_insert(inbox)
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
        .returning(inbox.c.event_id),
    )


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when the service is stopping."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
