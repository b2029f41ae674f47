"""Where a person's values are still readable: every table of every service's database and every
message of every stream (dead letters included), searched for the values in plain text."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg
import nats


def _holds(value: Any, needles: Sequence[bytes]) -> bool:
    if value is None:
        return False
    raw = value if isinstance(value, bytes | bytearray | memoryview) else str(value).encode()
    return any(n in bytes(raw) for n in needles)


async def in_databases(dsns: Iterable[str], needles: Sequence[str]) -> list[str]:
    """`database.table` for each table with a row that holds one of `needles`."""
    wanted = [n.encode() for n in needles]
    found = []
    for dsn in dsns:
        conn = await asyncpg.connect(dsn)
        try:
            tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            for (table,) in tables:
                rows = await conn.fetch(f'SELECT * FROM "{table}"')
                if any(_holds(v, wanted) for row in rows for v in row.values()):
                    found.append(f"{dsn.rsplit('/', 1)[-1]}.{table}")
        finally:
            await conn.close()
    return found


async def in_streams(nats_url: str, needles: Sequence[str]) -> list[str]:
    """`STREAM#sequence` for each message (any stream, DEADLETTER too) that holds a needle."""
    wanted = [n.encode() for n in needles]
    nc = await nats.connect(nats_url)
    found = []
    try:
        js = nc.jetstream()
        for info in await js.streams_info():
            state = info.state
            if not state.messages:
                continue
            for seq in range(max(state.first_seq, 1), state.last_seq + 1):
                try:
                    msg = await js.get_msg(info.config.name, seq)
                except nats.js.errors.NotFoundError:
                    continue  # deleted or expired
                if _holds(msg.data, wanted) or _holds(repr(msg.headers), wanted):
                    found.append(f"{info.config.name}#{seq}")
    finally:
        await nc.close()
    return found
