"""`raw_sql.fetch`: a statement straight on asyncpg is still part of the unit of work (its
transaction, its retries on races and dead connections, its statement listeners)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from kit_testbed import APPLIED, create_schema
from loopkit import db, raw_sql
from loopkit_dev.testing import PostgresServer

INSERT = "INSERT INTO applied (n, event_id, customer_id) VALUES ($1, $2, 'c') RETURNING n"


async def _fresh(postgres: PostgresServer) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    url = await postgres.fresh_database("loopkit_test")
    await create_schema(url)
    engine = db.create_engine(url, pool_size=1)
    return engine, db.session_factory(engine)


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(APPLIED))).scalar_one())


class Undo(Exception):
    pass


async def test_a_raw_statement_commits_and_rolls_back_with_its_unit_of_work(
    postgres: PostgresServer,
) -> None:
    engine, sessions = await _fresh(postgres)
    try:

        async def then_fail(session: AsyncSession) -> None:
            await raw_sql.fetch(session, INSERT, 1, "e-1")  # the transaction's first statement
            raise Undo

        with pytest.raises(Undo):
            await db.transact(sessions, then_fail)
        assert await _rows(sessions) == 0

        async def write(session: AsyncSession) -> Any:
            return (await raw_sql.fetch(session, INSERT, 2, "e-2"))[0]["n"]

        assert await db.transact(sessions, write) == 2
        assert await _rows(sessions) == 1
    finally:
        await engine.dispose()


async def test_a_unique_race_is_sqlalchemys_integrity_error_and_transact_retries_it(
    postgres: PostgresServer,
) -> None:
    engine, sessions = await _fresh(postgres)
    try:
        await db.transact(sessions, lambda s: raw_sql.fetch(s, INSERT, 1, "first"))
        tries: list[int] = []

        async def insert(session: AsyncSession) -> Any:
            tries.append(len(tries) + 1)
            return await raw_sql.fetch(session, INSERT, len(tries), "again")

        with pytest.raises(IntegrityError):
            await db.transact(sessions, insert, retry_races=False)
        tries.clear()
        assert (await db.transact(sessions, insert, autocommit=True))[0]["n"] == 2
        assert tries == [1, 2]
    finally:
        await engine.dispose()


async def test_a_dead_connection_is_replaced_and_the_work_runs_again(
    postgres: PostgresServer,
) -> None:
    engine, sessions = await _fresh(postgres)
    try:
        pooled = await db.transact(
            sessions, lambda s: raw_sql.fetch(s, "SELECT pg_backend_pid() AS pid")
        )
        admin = db.create_engine(str(engine.url.render_as_string(hide_password=False)))
        try:
            async with admin.connect() as conn:
                await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pooled[0][0]})
        finally:
            await admin.dispose()
        fresh = await db.transact(
            sessions, lambda s: raw_sql.fetch(s, "SELECT pg_backend_pid() AS pid")
        )
        assert fresh[0][0] != pooled[0][0]
    finally:
        await engine.dispose()


async def test_statement_listeners_hear_of_raw_statements(postgres: PostgresServer) -> None:
    engine, sessions = await _fresh(postgres)
    heard: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        heard.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        await db.transact(sessions, lambda s: raw_sql.fetch(s, "SELECT 1"), autocommit=True)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
        await engine.dispose()
    assert heard == ["SELECT 1"]


async def test_a_copy_is_in_the_unit_of_work_and_its_errors_are_sqlalchemys(
    postgres: PostgresServer,
) -> None:
    """`copy_on`: a binary COPY in the session's transaction (rolled back with it), heard by
    statement listeners, and a taken key is SQLAlchemy's IntegrityError (what `transact` and the
    consumers classify), not asyncpg's own exception."""
    engine, sessions = await _fresh(postgres)
    heard: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: heard.append(a[2]))
    columns = ("n", "event_id", "customer_id")
    try:

        async def copy(session: AsyncSession, first: int, then: Exception | None = None) -> None:
            rows = [(n, f"e-{n}", "c") for n in range(first, first + 3)]
            await raw_sql.copy_on(await session.connection(), "applied", columns, rows)
            if then is not None:
                raise then

        with pytest.raises(Undo):
            await db.transact(sessions, lambda s: copy(s, 1, Undo()))
        assert await _rows(sessions) == 0
        await db.transact(sessions, lambda s: copy(s, 1))
        assert await _rows(sessions) == 3
        copies = [s for s in heard if s.startswith("COPY")]
        assert (
            copies[-1]
            == 'COPY "applied" ("n", "event_id", "customer_id") FROM STDIN (FORMAT binary)'
        )

        with pytest.raises(IntegrityError):  # e-3 is taken
            await db.transact(sessions, lambda s: copy(s, 3), retry_races=False)
        assert await _rows(sessions) == 3
    finally:
        await engine.dispose()
