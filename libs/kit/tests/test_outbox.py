"""The transactional outbox and its relay: committed events reach JetStream exactly once, whatever
dies on the way."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from kit_testbed import (
    APPLIED,
    KIT,
    Database,
    Stream,
    customer_created,
    finish,
    run_helper,
    start_helper,
    unsent_count,
)
from loopkit import db, natsio, raw_sql
from loopkit.events import Outbox, stream_for
from loopkit.outbox import _CLAIM, OutboxRelay
from loopkit_dev.natsserver import NatsServer, free_port
from loopkit_dev.testing import eventually, read_events


async def _write_events(database: Database, producer: str, n: int) -> list[str]:
    """N events, committed in the outbox the way a service writes them (one per transaction)."""
    outbox = Outbox(KIT, producer)
    ids = []
    for _ in range(n):
        env = customer_created(producer)
        async with database.sessions() as session, session.begin():
            await outbox.add(session, env)
        ids.append(env.id)
    return ids


async def _published_at(database: Database) -> list[object]:
    async with database.sessions() as session:
        rows = await session.execute(select(KIT.outbox.c.published_at))
        return [r for (r,) in rows.all()]


async def test_relay_killed_between_publish_and_mark_sent_publishes_exactly_once(
    database: Database, stream: Stream, nats_server: NatsServer, nats_client: Client
) -> None:
    ids = await _write_events(database, stream.producer, 5)

    crashed = await run_helper(
        "relay_proc.py",
        database.url,
        nats_server.url,
        "--batch-size",
        "3",
        "--crash-after-publish",
    )
    assert crashed.returncode == 137, crashed.output
    assert "crashing after publishing 3 events" in crashed.output
    js = nats_client.jetstream()
    # The first batch is on the stream, yet every row is still unsent in the outbox.
    assert (await js.stream_info(stream.name)).state.messages == 3
    assert await unsent_count(database.sessions) == 5

    restarted = await run_helper("relay_proc.py", database.url, nats_server.url)
    assert restarted.returncode == 0, restarted.output
    assert "published 5" in restarted.output
    # JetStream recognised the three re-published events as the ones it already had.
    assert "3 of 5 events were already on the stream" in restarted.output

    info = await js.stream_info(stream.name)
    assert info.state.messages == 5
    on_stream = Counter(e.id for e in await read_events(nats_client, stream.name))
    assert on_stream == Counter({event_id: 1 for event_id in ids})
    assert await unsent_count(database.sessions) == 0
    assert all(at is not None for at in await _published_at(database))


async def test_relay_started_while_nats_is_down_publishes_everything_once_it_is_back(
    database: Database, producer: str, tmp_path: Path
) -> None:
    server = NatsServer(tmp_path / "nats", port=free_port())
    server.start()
    try:
        nc = await nats.connect(server.url)
        await natsio.ensure_service_streams(nc.jetstream(), producer, replicas=1)
        await nc.close()
        server.stop()
        ids = await _write_events(database, producer, 4)

        relay = await start_helper("relay_proc.py", database.url, server.url)
        try:
            # It is up, waiting for NATS, and publishes nothing meanwhile.
            await asyncio.sleep(1.5)
            assert relay.returncode is None
            assert await unsent_count(database.sessions) == 4
            server.start()
            done = await finish(relay)
        finally:
            if relay.returncode is None:
                relay.kill()
                await relay.wait()
        assert done.returncode == 0, done.output
        assert "published 4" in done.output

        nc = await nats.connect(server.url)
        try:
            assert (await nc.jetstream().stream_info(stream_for(producer))).state.messages == 4
            events = await read_events(nc, stream_for(producer))
        finally:
            await nc.close()
        assert Counter(e.id for e in events) == Counter({event_id: 1 for event_id in ids})
        assert await unsent_count(database.sessions) == 0
    finally:
        server.stop()


async def test_running_relay_rides_out_a_nats_crash(
    database: Database, producer: str, tmp_path: Path
) -> None:
    """Events committed while NATS is dead wait in the outbox and go out once, after it is back;
    meanwhile a relay stuck waiting for JetStream holds up no write of the service."""
    server = NatsServer(tmp_path / "nats", port=free_port())
    server.start()
    nc = await natsio.connect(server.url, name="relay-test")
    js = nc.jetstream()
    stop = asyncio.Event()
    # A long publish timeout: the relay's pass against the dead server lasts the whole outage.
    relay = OutboxRelay(database.sessions, KIT, js, poll_interval_s=0.05, publish_timeout_s=60)
    task = asyncio.create_task(relay.run(stop))
    try:
        await natsio.ensure_service_streams(js, producer, replicas=1)
        before = await _write_events(database, producer, 2)
        relay.wake()
        await eventually(lambda: _zero(unsent_count(database.sessions)))

        server.stop(kill=True)
        during = await _write_events(database, producer, 1)
        relay.wake()
        await eventually(lambda: _true(relay.awaiting_acks() > 0))  # relay waits for acks
        # Well within a call's default deadline (10 s), though the relay's pass is still waiting.
        during += await asyncio.wait_for(_write_events(database, producer, 2), 8)
        assert not task.done()
        assert await unsent_count(database.sessions) == 3

        server.start()
        await eventually(lambda: _zero(unsent_count(database.sessions)), timeout_s=20)
        assert (await js.stream_info(stream_for(producer))).state.messages == 5
        events = await read_events(nc, stream_for(producer))
        assert Counter(e.id for e in events) == Counter({i: 1 for i in before + during})
    finally:
        stop.set()
        if server.process is None:
            server.start()  # lets a relay still waiting on the dead server finish its pass
        await asyncio.wait_for(task, 20)
        await nc.close()
        server.stop()


async def _true(value: bool) -> bool:
    return value


async def _zero(count: Awaitable[int]) -> bool:
    return await count == 0


class _CountingRelay(OutboxRelay):
    """Records the size of every batch it published and how many JetStream already had."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.batches: list[int] = []
        self.ids: list[str] = []
        self.duplicates = 0

    async def _publish(self, rows):  # type: ignore[no-untyped-def]
        duplicates, personal = await super()._publish(rows)
        self.batches.append(len(rows))
        self.ids += [row.id for row in rows]
        self.duplicates += duplicates
        return duplicates, personal


async def test_a_burst_of_commits_goes_out_in_batches_exactly_once_even_with_two_relays(
    database: Database, stream: Stream, nats_client: Client
) -> None:
    """A campaign spike: hundreds of transactions commit at once, each waking the relay. On
    PostgreSQL two replicas relay the same outbox side by side and never publish a row twice."""
    js = nats_client.jetstream()
    # Only the wake-ups drive the relays: the poll would come too late to matter.
    replicas = 2 if database.backend == "postgres" else 1  # SQLite is one process
    relays = [
        _CountingRelay(database.sessions, KIT, js, batch_size=50, poll_interval_s=60)
        for _ in range(replicas)
    ]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run(stop)) for r in relays]
    outbox = Outbox(KIT, stream.producer)
    ids: list[str] = []

    def wake_all() -> None:
        for relay in relays:
            relay.wake()

    async def commit_one(session: AsyncSession) -> None:
        env = customer_created(stream.producer)
        await outbox.add(session, env)
        ids.append(env.id)

    try:
        await asyncio.gather(
            *[db.transact(database.sessions, commit_one, after_commit=wake_all) for _ in range(300)]
        )
        await eventually(lambda: _zero(unsent_count(database.sessions)), timeout_s=30)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 20)
    on_stream = Counter(e.id for e in await read_events(nats_client, stream.name))
    assert on_stream == Counter({event_id: 1 for event_id in ids})
    published = [n for r in relays for n in r.batches]
    assert sum(published) == 300  # every row published by exactly one relay, once
    assert sum(r.duplicates for r in relays) == 0
    assert len(published) < 300  # commits that woke the relay together left together


class _FailingSecondMark(OutboxRelay):
    """Fails to mark its second batch sent (the database went away) after publishing it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.marks = 0

    async def _mark_sent(self, conn: AsyncConnection, ids: list[str], personal: set[str]) -> None:
        self.marks += 1
        if self.marks == 2:
            raise ConnectionError("the database went away")
        await super()._mark_sent(conn, ids, personal)


async def test_a_backlog_of_batches_leaves_in_order_and_a_pass_failing_midway_loses_nothing(
    database: Database, stream: Stream, nats_client: Client
) -> None:
    """Several batches' worth of events (a relay back after an outage): they reach the stream in
    id order, each once, even when the pass fails between publishing and marking a batch."""
    ids = await _write_events(database, stream.producer, 95)
    js = nats_client.jetstream()
    failing = _FailingSecondMark(database.sessions, KIT, js, batch_size=20)
    with pytest.raises(ConnectionError):
        while await failing.publish_pending():
            pass
    assert await unsent_count(database.sessions) == 75  # only the first batch was marked sent
    # Its locks were let go: another relay (or the next pass) takes every unmarked row.
    relay = OutboxRelay(database.sessions, KIT, js, batch_size=20)
    published = 0
    while n := await relay.publish_pending():
        published += n
    assert published == 75
    assert await unsent_count(database.sessions) == 0
    events = await read_events(nats_client, stream.name)
    assert [e.id for e in events] == sorted(ids)  # the re-published ones were dropped


async def test_a_row_written_with_its_event_is_both_or_neither(database: Database) -> None:
    """`Outbox.add_with` (one statement on PostgreSQL): the row and its outbox row commit
    together, and a rolled-back transaction leaves neither."""
    outbox = Outbox(KIT, "kit-test")
    kept, dropped = customer_created("kit-test"), customer_created("kit-test")
    async with database.sessions() as session, session.begin():
        await outbox.add_with(session, APPLIED, {"event_id": kept.id, "customer_id": "c-1"}, kept)
        assert db.wrote_events(session)
    try:
        async with database.sessions() as session, session.begin():
            await outbox.add_with(
                session, APPLIED, {"event_id": dropped.id, "customer_id": "c-2"}, dropped
            )
            raise RuntimeError("the unit of work fails after writing")
    except RuntimeError:
        pass
    async with database.sessions() as session:
        applied = (await session.execute(select(APPLIED.c.event_id))).scalars().all()
        events = (await session.execute(select(KIT.outbox.c.id))).scalars().all()
    assert kept.id in applied and dropped.id not in applied
    assert kept.id in events and dropped.id not in events


@contextlib.contextmanager
def _statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements `engine` sends while the block runs (each one a round trip)."""
    sent: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        sent.append(" ".join(statement.split())[:40])

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def _advisory_locks(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        query = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
        return int((await conn.execute(query)).scalar_one())


async def test_a_pass_that_claims_nothing_is_one_round_trip_and_holds_no_locks(
    database: Database, stream: Stream, nats_client: Client
) -> None:
    """An idle poll, or a wake-up whose rows an earlier pass (or another replica) took: the claim
    alone, with no unlock after it, and nothing left locked. A pass with rows stays claim, read,
    mark, unlock."""
    relay = OutboxRelay(database.sessions, KIT, nats_client.jetstream(), batch_size=10)
    with _statements(database.engine) as idle:
        assert await relay.publish_pending() == 0
    ids = await _write_events(database, stream.producer, 3)
    if database.backend == "postgres":  # (SQLite's relay is one read in its own transaction)
        assert len(idle) == 1, idle
        # Another replica mid-pass holds every pending row: this relay claims none of them.
        other = db.create_engine(database.url, pool_size=1)
        try:
            async with other.connect() as conn:
                await conn.execute(
                    text(
                        "SELECT pg_try_advisory_lock(:space, hashtext(id)) FROM outbox"
                        " WHERE published_at IS NULL"
                    ),
                    {"space": 0x0B0C},
                )
                await conn.commit()
                with _statements(database.engine) as skipped:
                    assert await relay.publish_pending() == 0
                assert len(skipped) == 1, skipped
                assert await _advisory_locks(database.engine) == 3  # the other replica's only
                await conn.execute(text("SELECT pg_advisory_unlock_all()"))
        finally:
            await other.dispose()
        assert await _advisory_locks(database.engine) == 0
    with _statements(database.engine) as busy:
        assert await relay.publish_pending() == 3
    if database.backend == "postgres":
        assert [s.split()[0] for s in busy] == ["SELECT", "SELECT", "UPDATE", "SELECT"], busy
        assert await _advisory_locks(database.engine) == 0
    on_stream = Counter(e.id for e in await read_events(nats_client, stream.name))
    assert on_stream == Counter({event_id: 1 for event_id in ids})


_GATE = 0x7E57  # a one-key advisory lock the test holds to pause a claim


class _GatedRelay(_CountingRelay):
    """Its claim takes its snapshot, then waits at a gate (an advisory lock the test holds)
    before it try-locks a row: a claim whose snapshot predates another replica's mark and whose
    locks come after that replica let go."""

    async def _claim(self, conn: AsyncConnection) -> list[str]:
        gated = _CLAIM.replace(
            "WHERE published_at IS NULL",
            "WHERE published_at IS NULL AND pg_advisory_xact_lock_shared($4) IS NOT NULL",
        )
        assert gated != _CLAIM
        n = self._batch_size
        return [row[0] for row in await raw_sql.fetch_on(conn, gated, 2 * n, 0x0B0C, n, _GATE)]


async def _at_the_gate(engine: AsyncEngine, claim: asyncio.Task[int]) -> bool:
    async with engine.connect() as conn:
        query = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return claim.done() or bool((await conn.execute(query)).scalar_one())


@pytest.mark.parametrize("database", ["postgres"], indirect=True)  # SQLite: one relay, no race
async def test_a_row_marked_sent_between_a_claims_snapshot_and_its_lock_is_not_published_again(
    database: Database, stream: Stream, nats_client: Client
) -> None:
    """Two replicas: one claims while the other publishes a row, marks it sent and lets go of it
    between the first's snapshot (which still shows the row unsent) and its try-lock (which then
    succeeds). The claimed rows are read again after the locks: the sent one is left, nothing
    reaches JetStream twice, and the other row leaves once."""
    first_id, second_id = await _write_events(database, stream.producer, 2)
    js = nats_client.jetstream()
    late = _GatedRelay(database.sessions, KIT, js, batch_size=2)
    quick = _CountingRelay(database.sessions, KIT, js, batch_size=1)
    gate_engine = db.create_engine(database.url, pool_size=1)
    try:
        async with gate_engine.connect() as gate:
            await gate.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _GATE})
            await gate.commit()
            claim = asyncio.create_task(late.publish_pending())
            await eventually(lambda: _at_the_gate(gate_engine, claim))
            assert not claim.done()
            assert await quick.publish_pending() == 1  # claims, publishes, marks, lets go
            await gate.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _GATE})
            await gate.commit()
            assert await asyncio.wait_for(claim, 20) == 1
    finally:
        await gate_engine.dispose()
    assert quick.ids == [first_id]
    assert late.ids == [second_id]  # [first, second] without the read after the locks
    assert late.duplicates == quick.duplicates == 0
    on_stream = Counter(e.id for e in await read_events(nats_client, stream.name))
    assert on_stream == Counter({first_id: 1, second_id: 1})
    assert await unsent_count(database.sessions) == 0
    assert await _advisory_locks(database.engine) == 0


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # PostgreSQL: autocommit claim
async def test_an_idle_sqlite_relay_does_not_hold_up_a_writer(
    database: Database, stream: Stream, nats_client: Client
) -> None:
    """SQLite has one write lock: a relay's poll that finds nothing must not take it (it reads in
    a deferred transaction). A writer tries the lock, without waiting, while the relay's read is
    open; a pass with rows still publishes and marks them."""
    path = make_url(database.url).database
    assert path
    writer_got_the_lock: list[bool] = []

    def try_to_write(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "FROM outbox" not in statement:
            return
        writer = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("ROLLBACK")
            writer_got_the_lock.append(True)
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc)
            writer_got_the_lock.append(False)
        finally:
            writer.close()

    relay = OutboxRelay(database.sessions, KIT, nats_client.jetstream())
    event.listen(database.engine.sync_engine, "after_cursor_execute", try_to_write)
    try:
        assert await relay.publish_pending() == 0
        assert writer_got_the_lock == [True]  # [False] under BEGIN IMMEDIATE
        ids = await _write_events(database, stream.producer, 2)
        assert await relay.publish_pending() == 2
    finally:
        event.remove(database.engine.sync_engine, "after_cursor_execute", try_to_write)
    assert writer_got_the_lock[1] is True
    assert await unsent_count(database.sessions) == 0
    on_stream = Counter(e.id for e in await read_events(nats_client, stream.name))
    assert on_stream == Counter({event_id: 1 for event_id in ids})
