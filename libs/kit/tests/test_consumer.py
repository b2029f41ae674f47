"""Idempotent consumers: a crash between commit and ack never applies an event twice."""

from __future__ import annotations

from nats.js import JetStreamContext

from kit_testbed import (
    EVENT_TYPE,
    KIT,
    Database,
    Stream,
    applied_counts,
    publish_created,
    record_applied,
    run_helper,
)
from loopkit.consumer import EventConsumer, Subscription
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import eventually


async def test_handler_crash_mid_batch_applies_no_event_twice(
    database: Database, stream: Stream, js: JetStreamContext, nats_server: NatsServer
) -> None:
    ids = await publish_created(js, stream.producer, 6)
    service = f"svc{stream.producer}"

    crashed = await run_helper(
        "consumer_proc.py",
        database.url,
        nats_server.url,
        stream.name,
        stream.subjects,
        service,
        "--crash-after",
        "4",
        "--batch-size",
        "4",
        "--ack-wait",
        "1.0",
    )
    assert crashed.returncode == 137, crashed.output
    assert "crashing after committing" in crashed.output
    # A batch of four events was applied (committed, never acked) before the process died.
    assert sorted((await applied_counts(database.sessions)).values()) == [1, 1, 1, 1]

    consumer = EventConsumer(
        service,
        Subscription(
            name="applier",
            stream=stream.name,
            subjects=[stream.subjects],
            handlers={EVENT_TYPE: record_applied},
        ),
        database.sessions,
        KIT,
        js,
        ack_wait_s=1.0,
    )
    await consumer.start()

    async def settled() -> object:
        await consumer.poll(timeout_s=0.2)
        info = await js.consumer_info(stream.name, consumer.durable)
        done = info.num_ack_pending == 0 and info.num_pending == 0
        return done and len(await applied_counts(database.sessions)) == len(ids)

    await eventually(settled, timeout_s=20)
    assert await applied_counts(database.sessions) == {event_id: 1 for event_id in ids}
    info = await js.consumer_info(stream.name, consumer.durable)
    assert info.num_ack_pending == 0
    assert info.num_pending == 0
    # More deliveries than messages: the committed-but-unacked message (and any whose ack the
    # crash swallowed) came back, and the inbox turned it away.
    assert info.delivered.stream_seq == len(ids)
    assert info.delivered.consumer_seq > len(ids)
