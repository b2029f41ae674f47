"""`Subscription.skip_header`: a message whose producer already did this consumer's work (and
says so in a header) is acked unopened, with no inbox row, no handler and no transaction; the
others in the same batch are handled as ever, including a poison one."""

from __future__ import annotations

from nats.js import JetStreamContext
from sqlalchemy import event, func, select

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
from loopkit.deadletters import list_dead_letters
from loopkit.events import subject_for
from loopkit_dev.testing import eventually

SETTLED = ("Kit-Settled", "yes")


async def _publish(js: JetStreamContext, producer: str, *, settled: bool, data: bytes = b"") -> str:
    env = customer_created(producer)
    headers = {"Nats-Msg-Id": env.id, "Closedloop-Type": env.type}
    if settled:
        headers[SETTLED[0]] = SETTLED[1]
    await js.publish(
        subject_for(producer, env.type), data or env.SerializeToString(), headers=headers
    )
    return env.id


async def _inbox_rows(database: Database, durable: str) -> int:
    async with database.sessions() as session:
        query = select(func.count()).where(KIT.inbox.c.consumer == durable)
        return int((await session.execute(query)).scalar_one())


async def test_messages_settled_at_the_source_are_acked_unopened(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    settled = [await _publish(js, stream.producer, settled=True) for _ in range(3)]
    plain = [await _publish(js, stream.producer, settled=False) for _ in range(2)]
    # A settled message that is not even an envelope: never decoded, so not dead-lettered.
    await _publish(js, stream.producer, settled=True, data=b"\xff not an envelope")
    await _publish(js, stream.producer, settled=False, data=b"\xff not an envelope")
    consumer = EventConsumer(
        f"svc{stream.producer}",
        Subscription(
            name="skipper",
            stream=stream.name,
            subjects=[stream.subjects],
            handlers={EVENT_TYPE: record_applied},
            skip_header=SETTLED,
        ),
        database.sessions,
        KIT,
        js,
        batch_size=20,
        ack_wait_s=5.0,
    )
    await consumer.start()
    transactions = 0

    def began(*_: object) -> None:
        nonlocal transactions
        transactions += 1

    event.listen(database.engine.sync_engine, "begin", began)
    try:

        async def drained() -> bool:
            await consumer.poll(timeout_s=0.2)
            info = await js.consumer_info(stream.name, consumer.durable)
            return bool(info.num_ack_pending == 0 and info.num_pending == 0)

        await eventually(drained)
        assert await applied_counts(database.sessions) == {event_id: 1 for event_id in plain}
        assert not set(settled) & set((await applied_counts(database.sessions)).keys())
        assert await _inbox_rows(database, consumer.durable) == len(plain)
        dead = await list_dead_letters(js, consumer=consumer.durable)
        assert len(dead) == 1  # the plain undecodable one

        # A batch of settled messages alone opens no transaction at all.
        transactions = 0
        for _ in range(4):
            await _publish(js, stream.producer, settled=True)
        await eventually(drained)
        assert transactions == 0
        assert await _inbox_rows(database, consumer.durable) == len(plain)
    finally:
        event.remove(database.engine.sync_engine, "begin", began)
