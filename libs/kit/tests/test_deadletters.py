"""Poison messages: moved aside to the dead-letter stream, listed, and replayed by ops."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1.envelope_pb2 import Envelope
from kit_testbed import (
    EVENT_TYPE,
    KIT,
    Database,
    Stream,
    applied_counts,
    customer_created,
    record_applied,
)
from loopkit.consumer import EventConsumer, Subscription
from loopkit.deadletters import DeadLetter, list_dead_letters, replay
from loopkit.errors import DependencyUnavailable, InvalidArgument
from loopkit.events import subject_for
from loopkit.natsio import DEAD_LETTER_ROOT, DEAD_LETTER_STREAM
from loopkit_dev.testing import eventually

MAX_DELIVER = 2


class Handler:
    """The test handler, broken until fixed; counts its calls."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.calls = 0

    async def __call__(self, session: AsyncSession, env: Envelope) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error
        await record_applied(session, env)


@asynccontextmanager
async def consuming(
    database: Database,
    stream: Stream,
    js: JetStreamContext,
    handler: Handler,
    max_backoff_s: float = 10.0,
) -> AsyncIterator[EventConsumer]:
    consumer = EventConsumer(
        f"svc{stream.producer}",
        Subscription(
            name="applier",
            stream=stream.name,
            subjects=[stream.subjects],
            handlers={EVENT_TYPE: handler},
        ),
        database.sessions,
        KIT,
        js,
        max_deliver=MAX_DELIVER,
        ack_wait_s=2.0,
        batch_size=10,
        first_backoff_s=min(0.5, max_backoff_s),
        max_backoff_s=max_backoff_s,
    )
    await consumer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        yield consumer
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def publish(js: JetStreamContext, producer: str) -> Envelope:
    env = customer_created(producer)
    await js.publish(
        subject_for(producer, env.type),
        env.SerializeToString(),
        headers={"Nats-Msg-Id": env.id, "Closedloop-Type": env.type},
    )
    return env


async def one_letter(js: JetStreamContext, consumer: str) -> DeadLetter:
    async def listed() -> list[DeadLetter]:
        return await list_dead_letters(js, consumer=consumer)

    await eventually(listed)
    letters = await listed()
    assert len(letters) == 1, letters
    return letters[0]


async def settled(js: JetStreamContext, stream: str, consumer: str) -> bool:
    info = await js.consumer_info(stream, consumer)
    return bool(info.num_ack_pending == 0 and info.num_pending == 0)


async def test_failing_event_is_dead_lettered_after_max_deliver_and_replayed_once_fixed(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    handler = Handler(RuntimeError("the handler is broken"))
    async with consuming(database, stream, js, handler) as consumer:
        env = await publish(js, stream.producer)
        letter = await one_letter(js, consumer.durable)
        assert handler.calls == MAX_DELIVER
        assert letter.event_id == env.id
        assert letter.error == "RuntimeError: the handler is broken"
        assert letter.delivered == str(MAX_DELIVER)
        assert letter.original_subject == subject_for(stream.producer, EVENT_TYPE)
        assert letter.data == env.SerializeToString()
        # On the dead-letter stream itself, under the consumer's subject, with the error.
        raw = await js.get_last_msg(DEAD_LETTER_STREAM, f"{DEAD_LETTER_ROOT}.{consumer.durable}")
        assert raw.headers is not None
        assert raw.headers["Closedloop-Error"] == "RuntimeError: the handler is broken"
        await eventually(lambda: settled(js, stream.name, consumer.durable))
        assert await applied_counts(database.sessions) == {}

        handler.error = None  # the fix is deployed
        await replay(js, letter)
        await eventually(lambda: _applied(database, env.id))
        await eventually(lambda: settled(js, stream.name, consumer.durable))
        assert await list_dead_letters(js, consumer=consumer.durable) == []
    assert await applied_counts(database.sessions) == {env.id: 1}
    assert handler.calls == MAX_DELIVER + 1


async def test_replaying_an_event_that_still_fails_dead_letters_it_again(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    handler = Handler(RuntimeError("still broken"))
    async with consuming(database, stream, js, handler) as consumer:
        env = await publish(js, stream.producer)
        first = await one_letter(js, consumer.durable)
        await replay(js, first)  # replayed before the fix: it fails again
        await eventually(lambda: _true(handler.calls == 2 * MAX_DELIVER))
        await eventually(lambda: settled(js, stream.name, consumer.durable))
        # Not lost: it is back among the dead letters, where ops can replay it once fixed.
        again = await one_letter(js, consumer.durable)
        assert again.event_id == env.id
        assert again.seq != first.seq

        handler.error = None
        await replay(js, again)
        await eventually(lambda: _applied(database, env.id))
    assert await applied_counts(database.sessions) == {env.id: 1}


async def test_undecodable_message_is_dead_lettered_at_once(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    handler = Handler(None)
    async with consuming(database, stream, js, handler) as consumer:
        subject = subject_for(stream.producer, EVENT_TYPE)
        await js.publish(subject, b"\xff\xfe not an envelope")
        letter = await one_letter(js, consumer.durable)
        assert letter.delivered == "1"
        assert letter.error.startswith("undecodable:")
        assert letter.original_subject == subject
        assert letter.data == b"\xff\xfe not an envelope"
        await eventually(lambda: settled(js, stream.name, consumer.durable))
        # The consumer goes on with the next event.
        env = await publish(js, stream.producer)
        await eventually(lambda: _applied(database, env.id))
    assert handler.calls == 1


async def test_domain_error_is_dead_lettered_without_retries(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    handler = Handler(InvalidArgument("no such customer", field="customer_id"))
    async with consuming(database, stream, js, handler) as consumer:
        env = await publish(js, stream.producer)
        letter = await one_letter(js, consumer.durable)
        assert letter.event_id == env.id
        assert letter.delivered == "1"
        assert letter.error == "InvalidArgument: customer_id: no such customer"
        await eventually(lambda: settled(js, stream.name, consumer.durable))
    assert handler.calls == 1
    assert await applied_counts(database.sessions) == {}


class Outage(Handler):
    """Identity is away for the first `failures` calls, then back."""

    def __init__(self, failures: int) -> None:
        super().__init__(None)
        self.failures = failures

    async def __call__(self, session: AsyncSession, env: Envelope) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise DependencyUnavailable("identity service: UNAVAILABLE (connection refused)")
        await record_applied(session, env)


async def test_an_outage_longer_than_max_deliver_never_dead_letters(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    handler = Outage(failures=4 * MAX_DELIVER)
    # Back-off capped low so that many outage attempts fit in a short test.
    async with consuming(database, stream, js, handler, max_backoff_s=0.05) as consumer:
        envs = [await publish(js, stream.producer) for _ in range(3)]
        await eventually(lambda: _all_applied(database, [e.id for e in envs]), timeout_s=30)
        await eventually(lambda: settled(js, stream.name, consumer.durable))
        assert await list_dead_letters(js, consumer=consumer.durable) == []
        assert consumer.backoff_s == 0.0  # healthy again
    assert handler.calls > 4 * MAX_DELIVER
    assert await applied_counts(database.sessions) == {e.id: 1 for e in envs}


async def _all_applied(database: Database, ids: list[str]) -> bool:
    counts = await applied_counts(database.sessions)
    return all(counts.get(i, 0) == 1 for i in ids)


async def _applied(database: Database, event_id: str) -> bool:
    return (await applied_counts(database.sessions)).get(event_id, 0) > 0


async def _true(value: bool) -> bool:
    return value
