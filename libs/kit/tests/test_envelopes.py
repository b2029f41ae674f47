"""A payload of the wrong type is dead-lettered at once by a real consumer, not retried."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop.events.v1.identity_events_pb2 import (
    CustomerCreated,
    CustomerMerged,
    CustomerUnmerged,
)
from kit_testbed import EVENT_TYPE, KIT, Database, Stream, applied_counts, record_applied
from loopkit.consumer import EventConsumer, Handler, Subscription
from loopkit.customer_events import identity_subscription
from loopkit.deadletters import DeadLetter, list_dead_letters
from loopkit.envelopes import payload
from loopkit.events import new_envelope, subject_for
from loopkit_dev.testing import eventually


class Counting:
    """A handler reading a CustomerCreated payload; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, session: AsyncSession, env: Envelope) -> None:
        self.calls += 1
        payload(env, CustomerCreated)
        await record_applied(session, env)


@asynccontextmanager
async def consuming(
    database: Database, stream: Stream, js: JetStreamContext, handlers: Mapping[str, Handler]
) -> AsyncIterator[EventConsumer]:
    consumer = EventConsumer(
        f"svc{stream.producer}",
        Subscription(
            name="reader", stream=stream.name, subjects=[stream.subjects], handlers=handlers
        ),
        database.sessions,
        KIT,
        js,
        max_deliver=5,
        ack_wait_s=2.0,
    )
    await consumer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        yield consumer
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def publish(js: JetStreamContext, producer: str, event_type: str, body: object) -> Envelope:
    env = new_envelope(
        producer=producer,
        event_type=event_type,
        tenant_id="t-kit",
        customer_id="c-1",
        payload=body,  # type: ignore[arg-type]
    )
    await js.publish(
        subject_for(producer, event_type),
        env.SerializeToString(),
        headers={"Nats-Msg-Id": env.id, "Closedloop-Type": event_type},
    )
    return env


async def one_letter(js: JetStreamContext, consumer: str) -> DeadLetter:
    async def listed() -> list[DeadLetter]:
        return await list_dead_letters(js, consumer=consumer)

    await eventually(listed)
    letters = await listed()
    assert len(letters) == 1, letters
    return letters[0]


async def test_wrong_payload_is_dead_lettered_on_first_delivery(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    handler = Counting()
    async with consuming(database, stream, js, {EVENT_TYPE: handler}) as consumer:
        wrong = await publish(
            js, stream.producer, EVENT_TYPE, CustomerMerged(survivor_id="a", merged_id="b")
        )
        letter = await one_letter(js, consumer.durable)
        assert letter.event_id == wrong.id
        assert letter.delivered == "1"  # permanent: never retried
        assert letter.error.startswith("WrongPayload: payload: event customer.created does not")
        # The consumer goes on with the next, well-formed event.
        right = await publish(js, stream.producer, EVENT_TYPE, CustomerCreated(customer_id="c-1"))

        async def applied() -> bool:
            return (await applied_counts(database.sessions)).get(right.id, 0) == 1

        await eventually(applied)
    assert handler.calls == 2
    assert wrong.id not in await applied_counts(database.sessions)


async def test_identity_subscription_dead_letters_a_wrong_payload(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    merged: list[tuple[str, str, str]] = []

    async def on_merged(
        session: AsyncSession, tenant: str, survivor: str, gone: str, merge_id: str
    ) -> None:
        merged.append((tenant, survivor, gone))

    async def on_unmerged(
        session: AsyncSession, tenant: str, restored: str, survivor: str, merge_id: str
    ) -> None:
        raise AssertionError("not sent")

    async def on_forgotten(session: AsyncSession, tenant: str, ids: object) -> None:
        raise AssertionError("not sent")

    handlers = identity_subscription(
        on_merged=on_merged, on_unmerged=on_unmerged, on_forgotten=on_forgotten
    ).handlers
    async with consuming(database, stream, js, handlers) as consumer:
        await publish(js, stream.producer, "customer.merged", CustomerCreated(customer_id="x"))
        letter = await one_letter(js, consumer.durable)
        assert letter.delivered == "1"
        assert letter.error.startswith("WrongPayload")
    assert merged == []


async def test_customer_unmerged_reaches_the_handler(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    seen: list[tuple[str, str, str, str]] = []

    async def on_merged(*args: object) -> None:
        raise AssertionError("not sent")

    async def on_unmerged(
        session: AsyncSession, tenant: str, restored: str, survivor: str, merge_id: str
    ) -> None:
        seen.append((tenant, restored, survivor, merge_id))

    async def on_forgotten(*args: object) -> None:
        raise AssertionError("not sent")

    handlers = identity_subscription(
        on_merged=on_merged, on_unmerged=on_unmerged, on_forgotten=on_forgotten
    ).handlers
    async with consuming(database, stream, js, handlers) as consumer:
        await publish(
            js,
            stream.producer,
            "customer.unmerged",
            CustomerUnmerged(restored_id="B", survivor_id="C", merge_id="m-1", merged_into_id="A"),
        )

        async def handled() -> bool:
            return len(seen) == 1

        await eventually(handled)
        # An unmerge that names no merge cannot be acted on: dead-lettered at once.
        await publish(js, stream.producer, "customer.unmerged", CustomerUnmerged(restored_id="B"))
        letter = await one_letter(js, consumer.durable)
        assert letter.error.startswith("InvalidArgument")
    assert seen == [("t-kit", "B", "C", "m-1")]


def test_to_timestamp_matches_protobufs_own_conversion() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from google.protobuf.timestamp_pb2 import Timestamp

    from loopkit.timestamps import to_timestamp

    for at in (
        datetime(2026, 12, 1, 10, 11, 12, 345678, tzinfo=UTC),
        datetime(1969, 7, 20, 20, 17, 40, 1, tzinfo=UTC),
        datetime(2026, 12, 1, 18, 0, tzinfo=timezone(timedelta(hours=8))),
        datetime(2026, 12, 1, 10, 0, 0, 5),  # naive: UTC
    ):
        expected = Timestamp()
        expected.FromDatetime(at if at.tzinfo else at.replace(tzinfo=UTC))
        assert to_timestamp(at) == expected, at
