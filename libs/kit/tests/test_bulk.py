"""loopkit.bulk.insert_rows: rows go in as written (texts, numbers, NULLs, JSON, bytes, times),
one statement for any number of rows, and a taken unique key is skipped when asked; on PostgreSQL
(one array per column, or a binary COPY from `COPY_FROM` rows on) and SQLite (an executemany)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    event,
    select,
)

from kit_testbed import Database
from loopkit.bulk import COPY_FROM, insert_rows

METADATA = MetaData()
THINGS = Table(
    "bulk_things",
    METADATA,
    Column("id", String(26), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("key", String(200), nullable=False),
    Column("n", Integer, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("blob", LargeBinary, nullable=True),
    Column("at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("tenant", "key"),
)


def _row(i: int, key: str) -> dict[str, object]:
    at = datetime(2026, 12, 1, 12, tzinfo=UTC) + timedelta(seconds=i)
    return {
        "id": f"id-{i:03d}",
        "tenant": "t",
        "key": key,
        "n": i,
        "tags": ["vip", f"n{i}"] if i % 2 else [],
        "blob": bytes([i % 256, 0, 255]) if i % 3 else None,
        "at": at if i % 4 else None,
    }


async def test_rows_are_written_as_given_and_taken_keys_skipped(database: Database) -> None:
    async with database.engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    statements: list[str] = []
    event.listen(
        database.engine.sync_engine,
        "before_cursor_execute",
        lambda *args: statements.append(args[2].split()[0]),
    )
    rows = [_row(i, f"k{i}") for i in range(1, 121)]
    async with database.sessions() as session, session.begin():
        await insert_rows(session, THINGS, rows)
    # 120 rows, one statement: a COPY on PostgreSQL
    copy = "COPY" if database.engine.dialect.name == "postgresql" else "INSERT"

    def writes() -> list[str]:
        return [s for s in statements if s in ("INSERT", "COPY")]

    assert writes() == [copy]
    few = [_row(i, f"k{i}") for i in range(121, 121 + COPY_FROM - 1)]  # the arrays' path
    async with database.sessions() as session, session.begin():
        await insert_rows(session, THINGS, few)
    assert writes() == [copy, "INSERT"]
    rows += few
    again = [_row(500, "k7"), _row(501, "new")]  # k7 is taken: skipped, the other goes in
    async with database.sessions() as session, session.begin():
        await insert_rows(session, THINGS, again, skip_conflicts_on=("tenant", "key"))
    async with database.sessions() as session:
        stored = [dict(r._mapping) for r in await session.execute(select(THINGS).order_by("id"))]
    for row in stored:  # SQLite gives naive times back
        if row["at"] is not None and row["at"].tzinfo is None:
            row["at"] = row["at"].replace(tzinfo=UTC)
    assert stored == [*rows, _row(501, "new")]
