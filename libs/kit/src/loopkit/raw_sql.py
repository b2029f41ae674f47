"""A hot path's statements straight on asyncpg, inside the unit of work's own connection.

SQLAlchemy's execute path (execution context, parameter processing, result wrapping and a
greenlet hop per statement) cost identity's resolve about as much CPU as the rest of its Python
work. `fetch` sends a statement on the very asyncpg connection the session holds, so it stays
in the unit of work: in its transaction (BEGIN is sent first when the session has one and
nothing ran yet, as SQLAlchemy's first statement would), or alone in autocommit. Errors come back
as SQLAlchemy's (`IntegrityError` for a unique race, a dead connection invalidated), so
`loopkit.db.transact` retries them exactly as before. PostgreSQL (asyncpg) only.

The statement text uses asyncpg's `$1, $2...` parameters; asyncpg prepares it once per
connection (its own statement cache) and binds the arguments as given. `Positional` turns a
statement written with `:name` parameters (`positional`) or built by SQLAlchemy (`compiled`)
into that form once, and names each `$n`, so a caller keeps passing a dict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.util import greenlet_spawn


@dataclass(frozen=True)
class Positional:
    """A statement in asyncpg's `$n` form and the parameter name behind each `$n`."""

    sql: str
    names: tuple[str, ...]

    def args(self, params: dict[str, Any]) -> list[Any]:
        return [params[name] for name in self.names]


_NAMED = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")


def positional(sql: str) -> Positional:
    """`sql` with each `:name` replaced by `$n` (one n per distinct name); `::type` casts stay.
    Build it once per statement (it parses the text): cache the result."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return Positional(_NAMED.sub(number, sql), tuple(names))


def compiled(statement: Executable) -> Positional:
    """A SQLAlchemy statement with bound parameters, compiled for asyncpg. Cache the result:
    compiling costs more than running it."""
    done = statement.compile(dialect=postgresql.asyncpg.dialect())  # type: ignore[attr-defined,no-untyped-call]
    return Positional(done.string, tuple(done.positiontup or ()))


async def fetch(session: AsyncSession, sql: str, *args: Any) -> list[Any]:
    """The rows (asyncpg `Record`s: index or iterate them) `sql` returns, run in `session`'s
    transaction on its connection. SQLAlchemy's `before_cursor_execute` listeners are told of
    it (with no cursor or context), so statement counters count it."""
    return await fetch_on(await session.connection(), sql, *args)


async def fetch_on(connection: AsyncConnection, sql: str, *args: Any) -> list[Any]:
    """`fetch` on a connection of SQLAlchemy's (its transaction, or autocommit: the relay's)."""
    adapted = await _adapted(connection, sql, args)
    try:
        if adapted._transaction is None:
            await adapted._start_transaction()  # a no-op in autocommit
        rows: list[Any] = await adapted._connection.fetch(sql, *args)
    except Exception as exc:
        await greenlet_spawn(
            _raise_as_sqlalchemy, connection.sync_connection, adapted, exc, sql, args
        )
        raise  # not reached: the above always raises
    return rows


async def copy_on(
    connection: AsyncConnection,
    table: str,
    columns: Sequence[str],
    records: Iterable[Sequence[Any]],
) -> None:
    """`records` (one value per column, in `columns`' order) into `table` with a binary COPY on
    the connection's asyncpg connection, in its transaction like `fetch_on`. asyncpg encodes
    each value straight to the column's type; its array parameters (what `loopkit.bulk` sends
    otherwise) cost ~2x the client CPU per row, checking every element's type. COPY waits for
    the server's go-ahead before the data, so it takes two round trips to an INSERT's one."""
    names = ", ".join(f'"{c}"' for c in columns)  # what counters and errors show: asyncpg
    sql = f'COPY "{table}" ({names}) FROM STDIN (FORMAT binary)'  # quotes its own COPY
    adapted = await _adapted(connection, sql, ())
    try:
        if adapted._transaction is None:
            await adapted._start_transaction()
        await adapted._connection.copy_records_to_table(
            table, records=records, columns=list(columns)
        )
    except Exception as exc:
        await greenlet_spawn(
            _raise_as_sqlalchemy, connection.sync_connection, adapted, exc, sql, ()
        )
        raise


async def _adapted(connection: AsyncConnection, sql: str, args: Any) -> Any:
    """SQLAlchemy's adapted asyncpg connection under `connection`, once the statement counters
    were told of `sql`."""
    sync = connection.sync_connection
    if sync is not None and (sync._has_events or sync.engine._has_events):
        # Statement counters (tests, bench/_statements.py) see these statements too; no cursor
        # or execution context exists, and the statement cannot be rewritten here.
        sync.dispatch.before_cursor_execute(sync, None, sql, args, None, False)
    return (await connection.get_raw_connection()).dbapi_connection


def _raise_as_sqlalchemy(
    sync_connection: Any, adapted: Any, exc: Exception, sql: str, args: Any
) -> None:
    """Raise `exc` as SQLAlchemy would have for the same statement: translated by the dialect
    into its DBAPI error, then wrapped (and the connection invalidated if it is gone)."""
    try:
        adapted._handle_exception(exc)
    except Exception as translated:
        if not isinstance(translated, sync_connection.dialect.loaded_dbapi.Error):
            raise  # not the driver's (an OSError, say): as SQLAlchemy lets it through
        sync_connection._handle_dbapi_exception(translated, sql, args, None, None)
