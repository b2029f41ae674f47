"""`transact`: a pooled connection the server dropped costs a retry, not a failed call (there is no
pre-ping round trip to catch it), and the relay is woken only by transactions that wrote events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import event, func, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from kit_testbed import APPLIED, KIT, Database, create_schema, customer_created
from loopkit import db
from loopkit.events import Outbox
from loopkit_dev.testing import PostgresServer


async def test_a_connection_the_server_dropped_is_replaced_and_the_work_runs_again(
    postgres: PostgresServer,
) -> None:
    url = await postgres.fresh_database("loopkit_test")
    await create_schema(url)
    engine = db.create_engine(url, pool_size=1)
    sessions = db.session_factory(engine)
    try:

        async def pid(session: AsyncSession) -> int:
            return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())

        pooled = await db.transact(sessions, pid)
        # The server ends the pooled connection, as a restart or an idle timeout would.
        admin = db.create_engine(url, pool_size=1)
        try:
            async with admin.connect() as conn:
                await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pooled})
        finally:
            await admin.dispose()

        async def write(session: AsyncSession) -> int:
            await session.execute(insert(APPLIED).values(event_id="e-1", customer_id="c-1"))
            return await pid(session)

        fresh = await db.transact(sessions, write)
        assert fresh != pooled
        async with sessions() as session:
            count = (await session.execute(select(func.count()).select_from(APPLIED))).scalar()
        assert count == 1  # written once, by the run on the fresh connection
    finally:
        await engine.dispose()


async def test_the_relay_is_woken_only_after_a_transaction_that_wrote_events(
    database: Database,
) -> None:
    wakes: list[str] = []
    outbox = Outbox(KIT, "kitwake")

    async def read_only(session: AsyncSession) -> None:
        await session.execute(select(func.count()).select_from(APPLIED))

    async def with_event(session: AsyncSession) -> None:
        await outbox.add(session, customer_created("kitwake"))

    await db.transact(database.sessions, read_only, after_commit=lambda: wakes.append("read"))
    assert wakes == []
    await db.transact(database.sessions, with_event, after_commit=lambda: wakes.append("event"))
    assert wakes == ["event"]
    async with database.sessions() as session:
        rows = (await session.execute(select(func.count()).select_from(KIT.outbox))).scalar()
    assert rows == 1


async def test_a_service_pool_under_more_units_of_work_than_connections_opens_none_per_checkout(
    postgres: PostgresServer,
) -> None:
    """The pool a service runs on (`overflow=False`) opens its connections once and keeps them:
    an overflow connection was closed as it came back to a full pool, so a load above the pool's
    size forked and ended a PostgreSQL backend per checkout."""
    url = await postgres.fresh_database("loopkit_test")
    engine = db.create_engine(url, pool_size=3, overflow=False)
    sessions = db.session_factory(engine)
    opened: list[object] = []
    closed: list[object] = []
    event.listen(engine.sync_engine, "connect", lambda conn, _record: opened.append(conn))
    event.listen(engine.sync_engine, "close", lambda conn, _record: closed.append(conn))
    try:

        async def hold(session: AsyncSession) -> int:
            return int(
                (
                    await session.execute(text("SELECT pg_backend_pid() FROM pg_sleep(0.02)"))
                ).scalar_one()
            )

        for _ in range(3):  # three waves of four callers per connection
            pids = await asyncio.gather(*(db.transact(sessions, hold) for _ in range(12)))
        assert len(set(pids)) == 3
        assert len(opened) == 3
        assert closed == []
    finally:
        await engine.dispose()


async def test_postgresql_connections_start_with_jit_off(postgres: PostgresServer) -> None:
    """The kit's engines ask for jit off in the startup message (db.SERVER_SETTINGS): LLVM
    compiling a segment's count over 1M customers took longer than it saved."""
    url = await postgres.fresh_database("loopkit_test")
    engine = db.create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SHOW jit"))).scalar_one() == "off"
            # Still a session setting: a statement that wants JIT can SET LOCAL it back.
            await conn.execute(text("SET LOCAL jit = on"))
            assert (await conn.execute(text("SHOW jit"))).scalar_one() == "on"
    finally:
        await engine.dispose()


async def test_a_postgresql_deadlock_fails_one_unit_of_work_and_it_runs_again(
    postgres: PostgresServer,
) -> None:
    """Two units of work lock two keys in opposite orders: PostgreSQL fails one with 40P01
    (recognised by its SQLSTATE, whatever the server's lc_messages) and `transact` runs that one
    again, after the other committed."""
    url = await postgres.fresh_database("loopkit_test")
    engine = db.create_engine(url, pool_size=2)
    sessions = db.session_factory(engine)
    holding = {"a": asyncio.Event(), "b": asyncio.Event()}
    runs: list[str] = []
    errors: list[str] = []

    def unit(first: str, second: str) -> Callable[[AsyncSession], Awaitable[str]]:
        async def work(session: AsyncSession) -> str:
            runs.append(first)
            lock = text("SELECT pg_advisory_xact_lock(hashtext(:k))")
            await session.execute(lock, {"k": first})
            if not holding[first].is_set():  # the first run: both hold one before either asks
                holding[first].set()
                await asyncio.wait_for(holding[second].wait(), timeout=30)
            try:
                await session.execute(lock, {"k": second})
            except DBAPIError as exc:
                errors.append(str(getattr(exc.orig, "sqlstate", "")))
                raise
            return first

        return work

    try:
        done = await asyncio.gather(
            db.transact(sessions, unit("a", "b")), db.transact(sessions, unit("b", "a"))
        )
    finally:
        await engine.dispose()
    assert done == ["a", "b"]
    assert errors == ["40P01"]
    assert len(runs) == 3  # the one PostgreSQL failed ran again
