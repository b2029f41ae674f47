"""`loopkit.jetstream` against a real nats-server: `fetch` keeps nats-py's pull protocol (what is
there comes at once, a lingering pull waits for the next message, nothing is a time-out) without
a task per message; `ack_all` acks a batch in one write; `Publisher.publish_all` publishes one
and counts JetStream's acks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NoStreamResponseError

from kit_testbed import Stream, customer_created, publish_created
from loopkit.events import subject_for
from loopkit.jetstream import Publisher, ack_all, fetch


@pytest_asyncio.fixture
async def pull(
    stream: Stream, js: JetStreamContext
) -> AsyncIterator[JetStreamContext.PullSubscription]:
    durable = f"fetch-{stream.producer}"
    await js.add_consumer(
        stream.name,
        ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=30,
            filter_subject=stream.subjects,
        ),
    )
    sub = await js.pull_subscribe_bind(durable=durable, stream=stream.name)
    yield sub
    await sub.unsubscribe()


async def _pending(js: JetStreamContext, stream: Stream) -> tuple[int, int]:
    info = await js.consumer_info(stream.name, f"fetch-{stream.producer}")
    return info.num_pending, info.num_ack_pending


async def test_fetch_takes_what_is_there_in_order_then_times_out(
    stream: Stream, js: JetStreamContext, pull: JetStreamContext.PullSubscription
) -> None:
    ids = await publish_created(js, stream.producer, 7)
    first = await fetch(pull, 5, 1.0)
    second = await fetch(pull, 5, 1.0)  # two left: returned without waiting out the time-out
    got = [m.headers["Nats-Msg-Id"] for m in [*first, *second] if m.headers]
    assert got == ids
    assert await _pending(js, stream) == (0, 7)
    started = time.monotonic()
    with pytest.raises(NatsTimeoutError):
        await fetch(pull, 5, 0.3)
    assert 0.25 <= time.monotonic() - started < 2.0
    await ack_all(js._nc, [*first, *second])
    await js._nc.flush()
    assert await _pending(js, stream) == (0, 0)
    with pytest.raises(ValueError):  # acked already
        await ack_all(js._nc, first[:1])


async def test_a_lingering_fetch_returns_what_is_published_while_it_waits(
    stream: Stream, js: JetStreamContext, pull: JetStreamContext.PullSubscription
) -> None:
    waiting = asyncio.create_task(fetch(pull, 10, 3.0))
    await asyncio.sleep(0.3)  # the no-wait request came back empty: the lingering one waits
    assert not waiting.done()
    ids = await publish_created(js, stream.producer, 1)
    msgs = await asyncio.wait_for(waiting, 3.0)
    assert [m.headers["Nats-Msg-Id"] for m in msgs if m.headers] == ids
    await ack_all(js._nc, msgs)


async def test_fetch_makes_no_task_per_message(
    stream: Stream,
    js: JetStreamContext,
    pull: JetStreamContext.PullSubscription,
    nats_client: Client,
) -> None:
    """nats-py's fetch makes two tasks per message (`next_msg` and its `wait_for`): for 200
    messages, 400 or more. This one waits with a task only while nothing is queued."""
    await publish_created(js, stream.producer, 200)
    loop = asyncio.get_running_loop()
    made = 0
    factory = loop.get_task_factory()

    def counting(loop: asyncio.AbstractEventLoop, coro, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal made
        made += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    msgs = []
    loop.set_task_factory(counting)
    try:
        while len(msgs) < 200:
            msgs += await fetch(pull, 200, 2.0)
    finally:
        loop.set_task_factory(factory)
    assert len(msgs) == 200
    assert made < 50
    await ack_all(nats_client, msgs)


async def test_publish_all_counts_duplicates_and_refuses_a_subject_without_a_stream(
    stream: Stream, js: JetStreamContext, nats_client: Client
) -> None:
    publisher = Publisher(nats_client)
    envs = [customer_created(stream.producer) for _ in range(3)]
    batch = [
        (
            subject_for(stream.producer, env.type),
            env.SerializeToString(),
            {"Nats-Msg-Id": env.id, "Closedloop-Type": env.type, "X-Multi": "a\r\nb "},
        )
        for env in envs
    ]
    assert await publisher.publish_all(batch, 5.0) == 0
    assert await publisher.publish_all(batch[1:], 5.0) == 2  # JetStream had them
    assert (await js.stream_info(stream.name)).state.messages == 3
    stored = await js.get_msg(stream.name, 1)
    assert stored.headers and stored.headers["Nats-Msg-Id"] == envs[0].id
    assert stored.headers["X-Multi"] == "a  b"
    with pytest.raises(NoStreamResponseError):
        await publisher.publish_all([("nostream.here", b"x", {})], 5.0)
    assert publisher.awaiting == 0
    await publisher.close()


async def test_batches_published_at_once_each_get_their_acks(
    stream: Stream, js: JetStreamContext, nats_client: Client
) -> None:
    """Two callers at once (a shutdown flush beside a relay pass): the batches take turns, so
    neither reads the other's acks as stale ones."""
    publisher = Publisher(nats_client)
    batches = []
    for _ in range(2):
        envs = [customer_created(stream.producer) for _ in range(50)]
        batches.append(
            [
                (subject_for(stream.producer, e.type), e.SerializeToString(), {"Nats-Msg-Id": e.id})
                for e in envs
            ]
        )
    done = await asyncio.wait_for(
        asyncio.gather(*(publisher.publish_all(b, 3.0) for b in batches)), 10
    )
    assert done == [0, 0]
    assert (await js.stream_info(stream.name)).state.messages == 100
    await publisher.close()
