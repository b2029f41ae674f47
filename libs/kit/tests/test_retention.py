"""Retention: sent outbox rows and old inbox rows leave the database, and the streams the kit
creates expire what they hold (docs/operations.md, "Erasure and retention")."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext
from pydantic import ValidationError
from sqlalchemy import insert, select, update

from kit_testbed import KIT, Database, Stream, customer_created
from loopkit import natsio
from loopkit.events import Outbox, stream_for
from loopkit.outbox import OutboxRelay
from loopkit.settings import Settings
from loopkit_dev.natsserver import NatsServer, free_port
from loopkit_dev.testing import eventually

HOUR = timedelta(hours=1)


async def _outbox_ids(database: Database) -> set[str]:
    async with database.sessions() as session:
        return set((await session.execute(select(KIT.outbox.c.id))).scalars())


async def _inbox_ids(database: Database) -> set[str]:
    async with database.sessions() as session:
        return set((await session.execute(select(KIT.inbox.c.event_id))).scalars())


async def test_the_running_relay_deletes_sent_rows_past_retention_and_keeps_the_rest(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    outbox = Outbox(KIT, stream.producer)
    envs = [customer_created(stream.producer) for _ in range(7)]
    async with database.sessions() as session, session.begin():
        for env in envs:
            await outbox.add(session, env)
    now = datetime.now(UTC)
    old_sent, recent_sent = [e.id for e in envs[:5]], envs[5].id
    unsent_old = envs[6].id
    async with database.engine.begin() as conn:
        # Time passing: five rows were sent two hours ago, one a minute ago, and one row written
        # two hours ago was never sent (NATS away): it must stay whatever its age.
        await conn.execute(
            update(KIT.outbox)
            .where(KIT.outbox.c.id.in_(old_sent))
            .values(published_at=now - 2 * HOUR, created_at=now - 2 * HOUR)
        )
        await conn.execute(
            update(KIT.outbox)
            .where(KIT.outbox.c.id == recent_sent)
            .values(published_at=now - timedelta(minutes=1))
        )
        await conn.execute(
            update(KIT.outbox)
            .where(KIT.outbox.c.id == unsent_old)
            .values(created_at=now - 2 * HOUR)
        )
        await conn.execute(
            insert(KIT.inbox),
            [
                {"consumer": "c1", "event_id": f"old{n}", "subject": "s", "processed_at": at}
                for n, at in enumerate([now - timedelta(days=16)] * 3)
            ]
            + [{"consumer": "c1", "event_id": "recent", "subject": "s", "processed_at": now}],
        )

    relay = OutboxRelay(
        database.sessions,
        KIT,
        js,
        poll_interval_s=0.05,
        sweep_interval_s=0.05,
        inbox_sweep_interval_s=0.05,
        sweep_batch_size=2,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        # The unsent row is published by this relay, then kept: it was sent just now.
        async def swept() -> bool:
            return await _outbox_ids(database) == {recent_sent, unsent_old} and (
                await _inbox_ids(database) == {"recent"}
            )

        await eventually(swept)
    finally:
        stop.set()
        await task


async def test_prune_never_deletes_an_unsent_row_or_a_young_one(
    database: Database, stream: Stream, js: JetStreamContext
) -> None:
    outbox = Outbox(KIT, stream.producer)
    async with database.sessions() as session, session.begin():
        for _ in range(3):
            await outbox.add(session, customer_created(stream.producer))
    relay = OutboxRelay(database.sessions, KIT, js, outbox_retention_s=3600)
    assert await relay.publish_pending() == 3
    unsent = customer_created(stream.producer)
    async with database.sessions() as session, session.begin():
        await outbox.add(session, unsent)
    assert await relay.prune() == (0, 0)
    assert len(await _outbox_ids(database)) == 4
    # With no retention at all, every sent row goes at the next sweep; the unsent one stays.
    relay = OutboxRelay(database.sessions, KIT, js, outbox_retention_s=0, sweep_batch_size=2)
    assert await relay.prune() == (3, 0)
    assert await _outbox_ids(database) == {unsent.id}


def test_settings_refuse_limits_that_break_dedup_or_dead_letter_replay() -> None:
    with pytest.raises(ValidationError, match="duplicate window"):
        Settings(stream_max_age_s=3600)
    with pytest.raises(ValidationError, match="duplicate window"):
        Settings(deadletter_max_age_s=3600, inbox_retention_s=30 * 86400)
    with pytest.raises(ValidationError, match="inbox_retention_s must exceed"):
        Settings(deadletter_max_age_s=14 * 86400, inbox_retention_s=7 * 86400)
    s = Settings()
    assert s.outbox_retention_s == 3600
    assert s.inbox_retention_s > s.deadletter_max_age_s >= 86400


async def test_created_streams_carry_their_max_age_and_existing_ones_keep_the_operators(
    tmp_path: Path,
) -> None:
    server = NatsServer(tmp_path / "nats", port=free_port())
    server.start()
    try:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await natsio.ensure_service_streams(
            js, "alpha", replicas=1, max_age_s=2 * 86400, deadletter_max_age_s=3 * 86400
        )
        await natsio.ensure_producer_stream(js, "beta", replicas=1, max_age_s=4 * 86400)
        assert (await js.stream_info(stream_for("alpha"))).config.max_age == 2 * 86400
        assert (await js.stream_info(natsio.DEAD_LETTER_STREAM)).config.max_age == 3 * 86400
        assert (await js.stream_info(stream_for("beta"))).config.max_age == 4 * 86400

        # The operator shortens a stream's age; a restart with other settings leaves it so.
        config = (await js.stream_info(stream_for("alpha"))).config
        config.max_age = 5 * 86400
        await js.update_stream(config)
        await natsio.ensure_service_streams(
            js, "alpha", replicas=1, max_age_s=9 * 86400, deadletter_max_age_s=9 * 86400
        )
        assert (await js.stream_info(stream_for("alpha"))).config.max_age == 5 * 86400
        assert (await js.stream_info(natsio.DEAD_LETTER_STREAM)).config.max_age == 3 * 86400
        await nc.close()
    finally:
        server.stop()
