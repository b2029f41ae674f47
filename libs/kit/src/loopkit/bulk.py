"""Many rows of one table in one INSERT whose parameters are one array per column.

An executemany through SQLAlchemy processes every row's every parameter in Python (bind
processors, JSON serialisation, the compiled statement's parameter dicts) before asyncpg sees
them; on PostgreSQL `INSERT … SELECT * FROM unnest($1::text[], $2::int[], …)` takes one list per
column instead, which asyncpg encodes in C, and the statement text is the same whatever the
number of rows, so it is prepared once per table and set of columns. SQLite has no arrays: there it
stays an executemany (SQLAlchemy's multi-row INSERT).
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
    statement, json_columns = _statement(table, columns, skip_conflicts_on)
    params: dict[str, list[Any]] = {}
    for n, name in enumerate(columns):
        values = [row[name] for row in rows]
        if name in json_columns:
            values = [None if v is None else json.dumps(v) for v in values]
        params[f"c{n}"] = values
    await session.execute(statement, params)


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
