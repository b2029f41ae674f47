"""Which errors are outages (retry, never dead-letter, UNAVAILABLE/503): on errors a real
PostgreSQL and driver raise where they can be provoked here, and on the driver's restart errors
as SQLAlchemy wraps them (a whole restart is tests/test_postgres_restart.py)."""

from __future__ import annotations

import asyncpg.exceptions
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from loopkit import errors
from loopkit.outages import is_database_outage, is_outage
from loopkit_dev.natsserver import free_port
from loopkit_dev.testing import PostgresServer


async def _error_of(url: str, *statements: str) -> BaseException:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    except Exception as exc:
        return exc
    finally:
        await engine.dispose()
    raise AssertionError("no error")


async def test_a_refused_connection_is_an_outage() -> None:
    exc = await _error_of(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x", "SELECT 1")
    assert is_database_outage(exc) and is_outage(exc)


async def test_a_backend_terminated_by_the_administrator_is_an_outage(
    postgres: PostgresServer,
) -> None:
    url = await postgres.fresh_database("loopkit_outage")
    # What a restart does to every open session: FATAL 57P01 (admin shutdown).
    exc = await _error_of(url, "SELECT pg_terminate_backend(pg_backend_pid())")
    assert is_database_outage(exc), repr(exc)


async def test_bad_statements_and_deadlines_are_not_outages(postgres: PostgresServer) -> None:
    url = await postgres.fresh_database("loopkit_outage")
    for statement in ("SELEKT 1", "SELECT 1/0", "SELECT * FROM no_such_table"):
        exc = await _error_of(url, statement)
        assert not is_outage(exc), repr(exc)
    assert not is_outage(TimeoutError())
    assert not is_outage(errors.InvalidArgument("bad phone", field="phone"))
    assert is_outage(errors.DependencyUnavailable("identity service: UNAVAILABLE"))


@pytest.mark.parametrize(
    "message",
    [
        "the database system is shutting down",
        "the database system is starting up",
        "sorry, too many clients already",
    ],
)
def test_restart_messages_seen_from_asyncpg_are_outages(message: str) -> None:
    for cls in (
        asyncpg.exceptions.CannotConnectNowError,
        asyncpg.exceptions.TooManyConnectionsError,
        asyncpg.exceptions.AdminShutdownError,
    ):
        # What SQLAlchemy hands a caller: the driver error wrapped, with its SQLSTATE kept.
        wrapped = DBAPIError("SELECT 1", None, cls(message))
        assert is_outage(wrapped), (cls, message)


def test_only_network_errors_among_os_errors_are_outages() -> None:
    assert is_outage(ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)"))
    assert is_outage(OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 5432)"))
    # A handler that cannot write a file has a bug or a configuration problem: not an outage.
    assert not is_outage(PermissionError(13, "Permission denied", "/var/log/sent.jsonl"))
    assert not is_outage(FileNotFoundError(2, "No such file or directory"))
