"""A fetched batch is one transaction with a savepoint per message: a bad message fails alone,
an outage puts the whole batch back, and `on_commit` effects run once per applied message."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from asyncpg.exceptions import DeadlockDetectedError
from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1.envelope_pb2 import Envelope
from kit_testbed import (
    EVENT_TYPE,
    KIT,
    Database,
    Stream,
    applied_counts,
    publish_created,
    record_applied,
)
from loopkit.consumer import EventConsumer, Subscription
from loopkit.deadletters import list_dead_letters
from loopkit.errors import DependencyUnavailable, InvalidArgument
from loopkit.uow import on_commit
from loopkit_dev.testing import eventually

BATCH = 5


class Recording:
    """Records the event and counts it on commit; raises `errors[event id]` once it has written."""

    def __init__(self) -> None:
        self.errors: dict[str, Exception] = {}
        self.committed: list[str] = []

    async def __call__(self, session: AsyncSession, env: Envelope) -> None:
        await record_applied(session, env)
        on_commit(session, lambda: self.committed.append(env.id))
        error = self.errors.pop(env.id, None)
        if error is not None:
            raise error


async def started(
    database: Database,
    stream: Stream,
    js: JetStreamContext,
    handler: Callable[[AsyncSession, Envelope], Awaitable[None]],
) -> EventConsumer:
    consumer = EventConsumer(
        f"svc{stream.producer}",
        Subscription(
            name="batcher",
            stream=stream.name,
            subjects=[stream.subjects],
            handlers={EVENT_TYPE: handler},
        ),
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


async def test_a_bad_message_fails_alone_and_keeps_the_rest_of_its_batch(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    ids = await publish_created(js, stream.producer, BATCH)
    bad = ids[2]
    handler = Recording()
    handler.errors[bad] = InvalidArgument("no such customer", field="customer_id")
    consumer = await started(database, stream, js, handler)

    assert await consumer.poll(timeout_s=2.0) == BATCH  # the whole batch in one go
    good = [event_id for event_id in ids if event_id != bad]
    # The others' writes and effects survive the bad one's savepoint rollback; its own do not.
    assert await applied_counts(database.sessions) == {event_id: 1 for event_id in good}
    assert sorted(handler.committed) == sorted(good)
    letters = await list_dead_letters(js, consumer=consumer.durable)
    assert [(letter.event_id, letter.delivered) for letter in letters] == [(bad, "1")]
    await eventually(lambda: drained(js, stream, consumer))
    assert sorted(handler.committed) == sorted(good)  # nothing applied twice


async def test_a_retried_failure_comes_back_while_its_batch_mates_are_done(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    ids = await publish_created(js, stream.producer, BATCH)
    handler = Recording()
    handler.errors[ids[0]] = RuntimeError("flaky")  # fails once, then works
    consumer = await started(database, stream, js, handler)

    assert await consumer.poll(timeout_s=2.0) == BATCH
    assert set(await applied_counts(database.sessions)) == set(ids[1:])

    async def all_applied() -> bool:
        await consumer.poll(timeout_s=0.2)
        return len(await applied_counts(database.sessions)) == BATCH

    await eventually(all_applied)
    await eventually(lambda: drained(js, stream, consumer))
    assert await applied_counts(database.sessions) == {event_id: 1 for event_id in ids}
    assert sorted(handler.committed) == sorted(ids)
    assert await list_dead_letters(js, consumer=consumer.durable) == []


async def test_an_event_that_keeps_meeting_deadlocks_is_applied_not_dead_lettered(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    """Deadlocks are two batches' timing (acquisition's visits and forgets met one): more of them
    in a row than `max_deliver` must not dead-letter a good event."""
    ids = await publish_created(js, stream.producer, BATCH)
    unlucky = ids[2]
    handler = Recording()
    meetings = 0
    # Each delivery meets it several times (the unit of work retries a deadlock, then the batch
    # is applied again message by message): enough for more deliveries than max_deliver (5).
    MEETINGS = 40

    async def deadlocking(session: AsyncSession, env: Envelope) -> None:
        nonlocal meetings
        await handler(session, env)
        if env.id == unlucky and meetings < MEETINGS:
            meetings += 1
            raise OperationalError("UPDATE leads", {}, DeadlockDetectedError("deadlock detected"))

    consumer = await started(database, stream, js, deadlocking)

    async def all_applied() -> bool:
        await consumer.poll(timeout_s=0.2)
        return len(await applied_counts(database.sessions)) == BATCH

    await eventually(all_applied)
    assert meetings == MEETINGS
    assert await applied_counts(database.sessions) == {event_id: 1 for event_id in ids}
    assert await list_dead_letters(js, consumer=consumer.durable) == []


async def test_an_outage_mid_batch_puts_the_whole_batch_back_and_dead_letters_nothing(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    ids = await publish_created(js, stream.producer, BATCH)
    handler = Recording()
    handler.errors[ids[1]] = InvalidArgument("bad", field="x")  # would be dead-lettered...
    handler.errors[ids[3]] = DependencyUnavailable("identity service: UNAVAILABLE")
    consumer = await started(database, stream, js, handler)

    assert await consumer.poll(timeout_s=2.0) == BATCH
    # ...but the outage rolled the batch back: nothing applied, nothing counted, nothing aside.
    assert await applied_counts(database.sessions) == {}
    assert handler.committed == []
    assert consumer.backoff_s > 0
    assert await list_dead_letters(js, consumer=consumer.durable) == []

    await eventually(lambda: drained(js, stream, consumer))
    assert await applied_counts(database.sessions) == {event_id: 1 for event_id in ids}
    assert sorted(handler.committed) == sorted(ids)
    assert consumer.backoff_s == 0


async def test_a_batch_fetched_ahead_goes_back_at_once_when_the_consumer_stops(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    """`run` fetches the next batch while it applies one; stopping puts that batch back (nak),
    so it is delivered again at once, not after the ack wait (10 minutes here)."""
    ids = await publish_created(js, stream.producer, 2 * BATCH)
    stop = asyncio.Event()

    class StopAfterFirst(Recording):
        async def __call__(self, session: AsyncSession, env: Envelope) -> None:
            await super().__call__(session, env)
            stop.set()  # the loop ends after this batch; the next was fetched meanwhile

    consumer = EventConsumer(
        f"svc{stream.producer}",
        Subscription(
            name="ahead",
            stream=stream.name,
            subjects=[stream.subjects],
            handlers={EVENT_TYPE: StopAfterFirst()},
        ),
        database.sessions,
        KIT,
        js,
        batch_size=BATCH,
        ack_wait_s=600.0,
    )
    await consumer.start()
    await consumer.run(stop)
    assert len(await applied_counts(database.sessions)) == BATCH

    async def all_applied() -> bool:
        await consumer.poll(timeout_s=0.2)
        return len(await applied_counts(database.sessions)) == len(ids)

    await eventually(all_applied)
    assert await applied_counts(database.sessions) == {event_id: 1 for event_id in ids}


async def test_a_handler_that_swallows_a_database_error_does_not_fail_its_batch_mates(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    """A handler that catches a failed statement leaves PostgreSQL's transaction aborted, so the
    next message's statements fail too in the savepoint-less first pass: that must not count as
    the next message's failure. Its batch mates are applied in the same poll."""
    ids = await publish_created(js, stream.producer, BATCH)
    sloppy = ids[1]
    handler = Recording()

    async def swallowing(session: AsyncSession, env: Envelope) -> None:
        await handler(session, env)
        if env.id == sloppy:  # last, so the next message's statements are the first refused
            with contextlib.suppress(DBAPIError):
                await session.execute(text("SELECT 1 / 0"))  # PostgreSQL: aborts the transaction

    consumer = EventConsumer(
        f"svc{stream.producer}",
        Subscription(
            name="sloppy",
            stream=stream.name,
            subjects=[stream.subjects],
            handlers={EVENT_TYPE: swallowing},
        ),
        database.sessions,
        KIT,
        js,
        batch_size=BATCH,
        ack_wait_s=5.0,
        first_backoff_s=0.1,
        max_backoff_s=0.2,
    )
    await consumer.start()

    assert await consumer.poll(timeout_s=2.0) == BATCH
    applied = await applied_counts(database.sessions)
    # Every other message is applied once, at once; only the sloppy one may have failed.
    assert {event_id: n for event_id, n in applied.items() if event_id != sloppy} == {
        event_id: 1 for event_id in ids if event_id != sloppy
    }
    assert sorted(e for e in handler.committed if e != sloppy) == sorted(
        e for e in ids if e != sloppy
    )
