"""Units of work: effects registered with `on_commit` run once per commit, never per attempt."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, registry

from kit_testbed import KIT, Database
from loopkit.db import create_engine, one_snapshot
from loopkit.errors import FailedPrecondition
from loopkit.events import note_events_written
from loopkit.periodic import every
from loopkit.uow import UnitOfWork, on_commit
from loopkit_dev.testing import answer_of, eventually


class _InboxRow:
    """An ORM class over the kit's inbox table, for work that leaves changes unflushed."""

    consumer: str
    event_id: str
    subject: str
    processed_at: datetime


registry().map_imperatively(_InboxRow, KIT.inbox)


def _counter_total(reader: InMemoryMetricReader, name: str) -> int:
    data = reader.get_metrics_data()
    total = 0
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        assert isinstance(point, NumberDataPoint)
                        total += int(point.value)
    return total


async def _inbox_row(session: AsyncSession, event_id: str) -> None:
    await session.execute(
        insert(KIT.inbox).values(
            consumer="uow-test", event_id=event_id, subject="s", processed_at=datetime.now(UTC)
        )
    )


async def test_metric_counted_once_when_the_unit_of_work_is_retried(database: Database) -> None:
    reader = InMemoryMetricReader()
    counter = MeterProvider(metric_readers=[reader]).get_meter("t").create_counter("orders")
    taken = f"e-{uuid.uuid4().hex}"
    async with database.sessions() as session, session.begin():
        await _inbox_row(session, taken)
    woken: list[int] = []
    uow = UnitOfWork(database.sessions, after_commit=lambda: woken.append(1))
    attempts = 0

    async def work(session: AsyncSession) -> int:
        nonlocal attempts
        attempts += 1
        on_commit(session, lambda: counter.add(1))
        note_events_written(session)  # as Outbox.emit does: the relay is woken after the commit
        # The first attempt loses a unique-key race (the row exists): the unit is retried.
        await _inbox_row(session, taken if attempts == 1 else f"e-{uuid.uuid4().hex}")
        return attempts

    assert await uow.run(work) == 2
    assert _counter_total(reader, "orders") == 1
    assert woken == [1]


async def test_a_race_comes_back_at_once_when_the_caller_handles_it(database: Database) -> None:
    """`retry_races=False` (acquisition's one-statement lead): the unique-key race is the
    caller's to handle, raised after one attempt with nothing written and no effect run."""
    taken = f"e-{uuid.uuid4().hex}"
    async with database.sessions() as session, session.begin():
        await _inbox_row(session, taken)
    effects: list[str] = []
    uow = UnitOfWork(database.sessions)
    attempts = 0

    async def work(session: AsyncSession) -> None:
        nonlocal attempts
        attempts += 1
        on_commit(session, lambda: effects.append("counted"))
        await _inbox_row(session, taken)

    for autocommit in (False, True):
        attempts = 0
        with pytest.raises(IntegrityError):
            await uow.run(work, autocommit=autocommit, retry_races=False)
        assert attempts == 1
    assert effects == []
    # By default the same race is retried (and here loses every time).
    attempts = 0
    with pytest.raises(IntegrityError):
        await uow.run(work)
    assert attempts == uow.attempts


@pytest.mark.parametrize("database", ["postgres"], indirect=True)  # SQLite keeps its transaction
async def test_autocommit_work_commits_nothing_more_and_still_runs_its_effects(
    database: Database,
) -> None:
    """On PostgreSQL each statement of autocommit work commits as it runs: the session is not
    committed after it (no begin/commit bookkeeping), yet its effects and the relay's wake-up
    run, and ORM changes left unflushed are still written (by a commit, then)."""
    commits: list[int] = []

    def count_commit(_session: Session) -> None:
        commits.append(1)

    event.listen(Session, "after_commit", count_commit)
    try:
        effects: list[str] = []
        woken: list[int] = []
        uow = UnitOfWork(database.sessions, after_commit=lambda: woken.append(1))
        written = f"e-{uuid.uuid4().hex}"

        async def work(session: AsyncSession) -> None:
            on_commit(session, lambda: effects.append("counted"))
            note_events_written(session)
            await _inbox_row(session, written)

        await uow.run(work, autocommit=True)
        assert (commits, effects, woken) == ([], ["counted"], [1])

        pending = f"e-{uuid.uuid4().hex}"

        async def orm_work(session: AsyncSession) -> None:
            row = _InboxRow()
            row.consumer, row.event_id, row.subject = "uow-test", pending, "s"
            row.processed_at = datetime.now(UTC)
            session.add(row)  # not flushed: the end of the unit must write it
            on_commit(session, lambda: effects.append("flushed"))

        await uow.run(orm_work, autocommit=True)
        assert (commits, effects) == ([1], ["counted", "flushed"])
    finally:
        event.remove(Session, "after_commit", count_commit)
    async with database.sessions() as session:
        found = await session.scalar(
            select(func.count()).where(KIT.inbox.c.event_id.in_([written, pending]))
        )
    assert found == 2


async def test_effect_dropped_when_the_unit_of_work_fails(database: Database) -> None:
    effects: list[str] = []
    uow = UnitOfWork(database.sessions)
    event_id = f"e-{uuid.uuid4().hex}"

    async def work(session: AsyncSession) -> None:
        await _inbox_row(session, event_id)
        on_commit(session, lambda: effects.append("counted"))
        raise FailedPrecondition("the state forbids it")

    try:
        await uow.run(work)
    except FailedPrecondition:
        pass
    else:
        raise AssertionError("the unit of work should have failed")
    assert effects == []
    async with database.sessions() as session:
        kept = await session.scalar(select(func.count()).where(KIT.inbox.c.event_id == event_id))
    assert kept == 0
    # The next unit of work on a fresh session runs its own effects only.
    await uow.run(lambda s: _register(s, effects))
    assert effects == ["next"]


async def _register(session: AsyncSession, effects: list[str]) -> None:
    on_commit(session, lambda: effects.append("next"))


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_read_on_sqlite_goes_on_beside_an_open_writer(database: Database) -> None:
    """`UnitOfWork.read` begins DEFERRED on SQLite: it reads the last committed state while a
    writer's transaction is open, where `run` (BEGIN IMMEDIATE, the write lock) waited for
    the writer to finish (up to the 30 s busy timeout, then again on each retry)."""
    uow = UnitOfWork(database.sessions)

    async def count(session: AsyncSession) -> int:
        return int((await session.execute(select(func.count()).select_from(KIT.inbox))).scalar())

    before = await uow.read(count)
    async with database.sessions() as writer, writer.begin():
        await _inbox_row(writer, f"e-{uuid.uuid4().hex}")  # holds the write lock until the end
        answer = await answer_of(uow.read(count))
        assert answer == before  # the snapshot before the open write
    assert await uow.read(count) == before + 1


async def test_a_read_cannot_write(database: Database) -> None:
    """A write in `UnitOfWork.read` fails (SQLite: a `query_only` connection; PostgreSQL: BEGIN
    READ ONLY) and leaves nothing; the pooled connection writes again in the next `run`."""
    uow = UnitOfWork(database.sessions)

    async def count(session: AsyncSession) -> int:
        return int((await session.execute(select(func.count()).select_from(KIT.inbox))).scalar())

    before = await uow.read(count)
    with pytest.raises(DBAPIError, match=r"(?i)read.?only"):
        await uow.read(lambda s: _inbox_row(s, f"e-{uuid.uuid4().hex}"))
    assert await uow.read(count) == before
    await uow.run(lambda s: _inbox_row(s, f"e-{uuid.uuid4().hex}"))
    assert await uow.read(count) == before + 1


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_a_read_on_postgresql_is_read_only_and_may_ask_for_one_snapshot(
    database: Database,
) -> None:
    """`read` begins READ ONLY, with REPEATABLE READ when it asks for one snapshot; the
    pooled connection's next `run` writes at READ COMMITTED again. `one_snapshot` inside a
    read would come too late (its connection is taken already): it refuses."""
    uow = UnitOfWork(database.sessions)

    async def settings(session: AsyncSession) -> tuple[str, str]:
        level = (await session.execute(text("SHOW transaction_isolation"))).scalar_one()
        read_only = (await session.execute(text("SHOW transaction_read_only"))).scalar_one()
        return str(level), str(read_only)

    assert await uow.read(settings) == ("read committed", "on")
    assert await uow.read(settings, one_snapshot=True) == ("repeatable read", "on")
    assert await uow.run(settings) == ("read committed", "off")

    async def late(session: AsyncSession) -> None:
        await one_snapshot(session)

    with pytest.raises(RuntimeError, match="snapshot=True"):
        await uow.read(late)


async def test_periodic_worker_survives_a_failed_round_and_stops_when_asked() -> None:
    rounds: list[str] = []

    async def tick() -> None:
        rounds.append("tick")
        if len(rounds) == 1:
            raise RuntimeError("database down")

    stop = asyncio.Event()
    task = asyncio.create_task(every(0.01, tick, name="test sweep")(stop))
    await eventually(lambda: _at_least(rounds, 3))
    stop.set()
    await asyncio.wait_for(task, 10)
    assert task.exception() is None


async def test_a_round_that_meets_a_busy_database_is_a_warning_and_a_bug_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A round that meets SQLite's busy lock (another connection holds the write lock) logs one
    warning line; a round that raises a bug logs an ERROR with its traceback."""
    import sqlite3

    path = tmp_path / "busy.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    rounds: list[str] = []

    async def tick() -> None:
        rounds.append("tick")
        if len(rounds) == 2:
            raise RuntimeError("a bug")
        if len(rounds) == 1:
            async with engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA busy_timeout = 0")
                await conn.exec_driver_sql("INSERT INTO t VALUES (1)")
                await conn.commit()

    stop = asyncio.Event()
    with caplog.at_level(logging.WARNING, logger="loopkit.periodic"):
        task = asyncio.create_task(every(0.01, tick, name="test expiry")(stop))
        await eventually(lambda: _at_least(rounds, 3))
        stop.set()
        await asyncio.wait_for(task, 10)
    holder.rollback()
    holder.close()
    await engine.dispose()
    found = [(r.levelno, r.exc_info is not None, r.getMessage()) for r in caplog.records]
    assert found[0][:2] == (logging.WARNING, False) and "database is locked" in found[0][2]
    assert found[1][:2] == (logging.ERROR, True)


async def _at_least(rounds: list[str], n: int) -> bool:
    return len(rounds) >= n


async def test_periodic_worker_runs_a_round_at_once_when_woken() -> None:
    """A worker polling once an hour still picks up new work as soon as it is woken."""
    rounds: list[str] = []

    async def tick() -> None:
        rounds.append("tick")

    stop, wake = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(every(3600, tick, name="test inbox", wake=wake)(stop))
    await eventually(lambda: _at_least(rounds, 1))
    wake.set()
    await eventually(lambda: _at_least(rounds, 2))
    stop.set()
    await asyncio.wait_for(task, 10)
    assert task.exception() is None


async def test_a_wake_runs_the_wake_work_at_once_and_the_rounds_keep_their_schedule() -> None:
    calls: list[str] = []
    wake = asyncio.Event()

    async def tick() -> None:
        calls.append("round")

    async def on_wake() -> None:
        calls.append("woken")

    stop = asyncio.Event()
    # Rounds an hour apart: only the first round runs during the test.
    worker = every(3600, tick, name="test sweep", wake=wake, on_wake=on_wake)
    task = asyncio.create_task(worker(stop))
    await eventually(lambda: _at_least(calls, 1))
    wake.set()
    await eventually(lambda: _at_least(calls, 2))
    stop.set()
    await asyncio.wait_for(task, 10)
    assert calls == ["round", "woken"]
