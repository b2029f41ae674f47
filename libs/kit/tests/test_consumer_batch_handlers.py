"""A batch handler gets a fetched batch's new events of its type in one call, and keeps every
guarantee of the per-message path: a poison message still dead-letters alone, an event already in
the inbox is not given again, an outage puts the whole batch back, acks come after the commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from nats.js import JetStreamContext
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop.events.v1.identity_events_pb2 import CustomerMerged
from kit_testbed import (
    APPLIED,
    EVENT_TYPE,
    KIT,
    Database,
    Stream,
    applied_counts,
    publish_created,
)
from loopkit.consumer import EventConsumer, Subscription
from loopkit.deadletters import list_dead_letters
from loopkit.errors import DependencyUnavailable, InvalidArgument
from loopkit.events import new_envelope, subject_for
from loopkit.uow import on_commit
from loopkit_dev.testing import eventually

BATCH = 5


class BatchRecording:
    """Writes one `applied` row per event in one statement, counts them on commit, and raises
    `errors[event id]` (once) when that event is among those it was given, and InvalidArgument
    every time one of `poison` is."""

    def __init__(self) -> None:
        self.errors: dict[str, Exception] = {}
        self.poison: set[str] = set()
        self.calls: list[list[str]] = []
        self.committed: list[str] = []

    async def __call__(self, session: AsyncSession, envs: Sequence[Envelope]) -> None:
        ids = [env.id for env in envs]
        self.calls.append(ids)
        await session.execute(
            insert(APPLIED), [{"event_id": e.id, "customer_id": e.customer_id} for e in envs]
        )
        on_commit(session, lambda: self.committed.extend(ids))
        for event_id in ids:
            if event_id in self.poison:
                raise InvalidArgument("bad payload", field="payload")
            error = self.errors.pop(event_id, None)
            if error is not None:
                raise error


async def started(
    database: Database, stream: Stream, js: JetStreamContext, handler: BatchRecording
) -> EventConsumer:
    subscription = Subscription.to(
        stream.producer, "batches", {}, batch_handlers={EVENT_TYPE: handler}
    )
    assert subscription.subjects == [subject_for(stream.producer, EVENT_TYPE)]
    consumer = EventConsumer(
        f"svc{stream.producer}",
        subscription,
        database.sessions,
        KIT,
        js,
        batch_size=BATCH,
        ack_wait_s=5.0,
        first_backoff_s=0.1,
        max_backoff_s=0.2,
    )
    await consumer.start()
    return consumer


async def drained(js: JetStreamContext, stream: Stream, consumer: EventConsumer) -> bool:
    await consumer.poll(timeout_s=0.2)
    info = await js.consumer_info(stream.name, consumer.durable)
    return bool(info.num_ack_pending == 0 and info.num_pending == 0)


async def test_a_batch_handler_gets_the_new_events_of_a_batch_in_one_call(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    ids = await publish_created(js, stream.producer, BATCH)
    handler = BatchRecording()
    consumer = await started(database, stream, js, handler)
    # Two of them were applied before a crash that lost their acks: their inbox rows are there.
    async with database.sessions.begin() as session:
        await session.execute(
            insert(KIT.inbox),
            [
                {
                    "consumer": consumer.durable,
                    "event_id": event_id,
                    "subject": subject_for(stream.producer, EVENT_TYPE),
                    "processed_at": datetime.now(UTC),
                }
                for event_id in ids[:2]
            ],
        )

    assert await consumer.poll(timeout_s=2.0) == BATCH
    assert handler.calls == [ids[2:]]  # once, in stream order, without the ones seen before
    assert await applied_counts(database.sessions) == {event_id: 1 for event_id in ids[2:]}
    assert handler.committed == ids[2:]
    await eventually(lambda: drained(js, stream, consumer))  # every message was acked
    assert handler.calls == [ids[2:]]


async def test_a_poison_message_in_a_batch_dead_letters_alone(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    ids = await publish_created(js, stream.producer, BATCH)
    bad = ids[3]
    handler = BatchRecording()
    handler.errors[bad] = InvalidArgument("no such customer", field="customer_id")
    consumer = await started(database, stream, js, handler)

    assert await consumer.poll(timeout_s=2.0) == BATCH
    # The batch failed as a whole, then each event was applied alone: only the culprit fails
    # (its error was raised once, so the retry of it alone would pass: a DomainError is final).
    assert handler.calls[0] == ids
    assert handler.calls[1:] == [[event_id] for event_id in ids]
    assert await applied_counts(database.sessions) == {event_id: 1 for event_id in ids}
    assert sorted(handler.committed) == sorted(ids)
    assert await list_dead_letters(js, consumer=consumer.durable) == []

    # A message that fails alone too is dead-lettered alone; its batch mates are applied.
    more = await publish_created(js, stream.producer, BATCH)
    poison = more[1]
    handler.poison.add(poison)
    assert await consumer.poll(timeout_s=2.0) == BATCH
    fine = [event_id for event_id in more if event_id != poison]
    assert await applied_counts(database.sessions) == {event_id: 1 for event_id in ids + fine}
    letters = await list_dead_letters(js, consumer=consumer.durable)
    assert [(letter.event_id, letter.delivered) for letter in letters] == [(poison, "1")]
    assert sorted(handler.committed) == sorted(ids + fine)
    await eventually(lambda: drained(js, stream, consumer))


async def test_an_outage_in_a_batch_handler_puts_the_batch_back_and_dead_letters_nothing(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    ids = await publish_created(js, stream.producer, BATCH)
    handler = BatchRecording()
    handler.errors[ids[2]] = DependencyUnavailable("identity service: UNAVAILABLE")
    consumer = await started(database, stream, js, handler)

    assert await consumer.poll(timeout_s=2.0) == BATCH
    assert handler.calls == [ids]  # no one-by-one retry: an outage is nobody's fault
    assert await applied_counts(database.sessions) == {}
    assert handler.committed == []
    assert consumer.backoff_s > 0

    await eventually(lambda: drained(js, stream, consumer))
    assert await applied_counts(database.sessions) == {event_id: 1 for event_id in ids}
    assert sorted(handler.committed) == sorted(ids)
    assert consumer.backoff_s == 0
    assert await list_dead_letters(js, consumer=consumer.durable) == []


async def test_other_types_between_batched_ones_keep_stream_order(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    order: list[list[str]] = []
    batched = BatchRecording()

    async def batch(session: AsyncSession, envs: Sequence[Envelope]) -> None:
        order.append([env.id for env in envs])
        await batched(session, envs)

    async def one(session: AsyncSession, env: Envelope) -> None:
        order.append([f"one:{env.id}"])

    first = await publish_created(js, stream.producer, 2)
    other = new_envelope(
        producer=stream.producer,
        event_type="customer.merged",
        tenant_id="t-kit",
        customer_id="c-1",
        payload=CustomerMerged(survivor_id="c-1", merged_id="c-2"),
    )
    await js.publish(
        subject_for(stream.producer, other.type),
        other.SerializeToString(),
        headers={"Nats-Msg-Id": other.id},
    )
    last = await publish_created(js, stream.producer, 2)
    consumer = EventConsumer(
        f"svc{stream.producer}",
        Subscription.to(
            stream.producer, "mixed", {"customer.merged": one}, batch_handlers={EVENT_TYPE: batch}
        ),
        database.sessions,
        KIT,
        js,
        batch_size=BATCH,
    )
    await consumer.start()

    assert await consumer.poll(timeout_s=2.0) == 5
    assert order == [first, [f"one:{other.id}"], last]
    assert await applied_counts(database.sessions) == {event_id: 1 for event_id in first + last}
