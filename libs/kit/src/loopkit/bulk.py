"""Many rows of one table in one INSERT whose parameters are one array per column.

An executemany through SQLAlchemy processes every row's every parameter in Python (bind
processors, JSON serialisation, the compiled statement's parameter dicts) before asyncpg sees
them; on PostgreSQL `INSERT … SELECT * FROM unnest($1::text[], $2::int[], …)` takes one list per
column instead, which asyncpg encodes in C, and the statement text is the same whatever the
number of rows, so it is prepared once per table and set of columns. A batch of `COPY_FROM` rows
or more that skips no conflicts goes as a binary COPY instead (`loopkit.raw_sql.copy_on`). SQLite
has no arrays: there it stays an executemany (SQLAlchemy's multi-row INSERT).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    String,
    Table,
    TextClause,
    text,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from loopkit.raw_sql import copy_on

# From this many rows on (and with no conflicts to skip) PostgreSQL takes them with a binary COPY
# instead: half the client CPU per row, but a second round trip (`raw_sql.copy_on`), which a
# batch this size repays (`bench/assignment.py`).
COPY_FROM = 64


async def insert_rows(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    skip_conflicts_on: tuple[str, ...] = (),
) -> None:
    """Insert `rows` (dicts with the same keys: the columns written; a column left out takes the
    database's default, not a Python-side one). JSON columns take the Python value. With
    `skip_conflicts_on` (a unique key's columns), a row whose key is taken is left out (ON
    CONFLICT DO NOTHING)."""
    if not rows:
        return
    columns = tuple(rows[0])
    if session.get_bind().dialect.name != "postgresql":
        stmt = sqlite_insert(table)
        if skip_conflicts_on:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(skip_conflicts_on))
        await session.execute(stmt, list(rows))
        return
    if len(rows) >= COPY_FROM and not skip_conflicts_on:
        await _copy(session, table, columns, rows)
        return
    statement, json_columns = _statement(table, columns, skip_conflicts_on)
    params: dict[str, list[Any]] = {}
    for n, name in enumerate(columns):
        values = [row[name] for row in rows]
        if name in json_columns:
            values = [None if v is None else json.dumps(v) for v in values]
        params[f"c{n}"] = values
    await session.execute(statement, params)


async def _copy(
    session: AsyncSession, table: Table, columns: tuple[str, ...], rows: Sequence[dict[str, Any]]
) -> None:
    """A binary COPY of the rows (`loopkit.raw_sql.copy_on`); JSON columns go as their text."""
    _array_types(table, columns)  # the same column types as the arrays' path, or TypeError
    json_columns = [n for n, c in enumerate(columns) if isinstance(table.c[c].type, JSON)]
    if json_columns:
        records: list[Any] = [[row[c] for c in columns] for row in rows]
        for record in records:
            for n in json_columns:
                if record[n] is not None:
                    record[n] = json.dumps(record[n])
    else:
        records = [tuple(row[c] for c in columns) for row in rows]
    await copy_on(await session.connection(), table.name, columns, records)


def _array_type(column_type: Any) -> str:
    """The PostgreSQL array a column's values travel in (JSON as text, cast back in the SELECT)."""
    if isinstance(column_type, JSON):
        return "text[]"
    if isinstance(column_type, DateTime):
        return "timestamptz[]" if column_type.timezone else "timestamp[]"
    if isinstance(column_type, BigInteger):
        return "bigint[]"
    if isinstance(column_type, Integer):
        return "int[]"
    if isinstance(column_type, Boolean):
        return "boolean[]"
    if isinstance(column_type, Float):
        return "float8[]"
    if isinstance(column_type, LargeBinary):
        return "bytea[]"
    if isinstance(column_type, String):
        return "text[]"
    raise TypeError(f"insert_rows: no array type for {column_type!r}")


@functools.cache
def _array_types(table: Table, columns: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_array_type(table.c[c].type) for c in columns)


@functools.cache
def _statement(
    table: Table, columns: tuple[str, ...], skip_conflicts_on: tuple[str, ...]
) -> tuple[TextClause, frozenset[str]]:
    json_columns = frozenset(c for c in columns if isinstance(table.c[c].type, JSON))
    arrays = ", ".join(
        f"CAST(:c{n} AS {_array_type(table.c[c].type)})" for n, c in enumerate(columns)
    )
    selected = ", ".join(
        f"CAST(u.c{n} AS json)" if c in json_columns else f"u.c{n}" for n, c in enumerate(columns)
    )
    names = ", ".join(f'"{c}"' for c in columns)
    aliases = ", ".join(f"c{n}" for n in range(len(columns)))
    sql = (
        f'INSERT INTO "{table.name}" ({names}) SELECT {selected}'
        f" FROM unnest({arrays}) AS u({aliases})"
    )
    if skip_conflicts_on:
        sql += f" ON CONFLICT ({', '.join(skip_conflicts_on)}) DO NOTHING"
    return text(sql), json_columns
