"""One holder at a time across a service's replicas and worker processes, without a table: for
periodic work every replica could do but one is enough (gauges computed from the whole database).

`ReplicaLease.held()` is asked before each round. On PostgreSQL the first process to take a
session-level advisory lock, on a connection of the lease's own, keeps it round after round for
as long as that connection lives: a replica that drains (`release()`), dies or loses its
connection gives it up (a node that vanished: once the server's keepalive probes of the session
fail, about a minute), and another takes it on its next `held()`. While held, each `held()`
costs one `SELECT 1` on that connection (to notice it was lost). The holder keeps one pooled
connection checked out.

It is not a fence: when a holder's connection is cut, the holder learns so only at its next
`held()`, so a round of the old holder may overlap the new holder's first. Use it where a round
done twice is harmless (a recomputation), never to make a write happen once.

SQLite has one process (several workers or replicas are refused on it): always held.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from loopkit.db import is_sqlite

log = logging.getLogger(__name__)

# The two-key advisory lock space of leases (the outbox relay's claims use 0x0B0C; a one-key
# lock, as identity takes, never conflicts with a two-key one). The second key hashes the name.
_SPACE = 0x1EA5
_TRY = text("SELECT pg_try_advisory_lock(:space, hashtext(:name))")
_UNLOCK = text("SELECT pg_advisory_unlock(:space, hashtext(:name))")
_PING = text("SELECT 1")
# A holder whose node vanished without closing its socket would keep its session, and the lease,
# until the server's TCP keepalive gives up (two hours by default): this session probes after
# 30 s of silence, every 10 s, 3 times (about a minute). Ignored on a Unix socket.
_KEEPALIVE = text(
    "SELECT set_config('tcp_keepalives_idle', '30', false),"
    " set_config('tcp_keepalives_interval', '10', false),"
    " set_config('tcp_keepalives_count', '3', false)"
)


class ReplicaLease:
    def __init__(self, engine: AsyncEngine, name: str) -> None:
        self.name = name
        self._always = is_sqlite(engine)
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._conn: AsyncConnection | None = None
        self._guard = asyncio.Lock()

    @property
    def holding(self) -> bool:
        """Whether the last `held()` found the lease this process's (no round trip)."""
        return self._always or self._conn is not None

    async def held(self) -> bool:
        """True when this process holds the lease (taking it if it is free). A database outage
        raises (the round fails and the next one asks again)."""
        if self._always:
            return True
        async with self._guard:
            if self._conn is not None:
                if await self._alive(self._conn):
                    return True
                self._conn = None
            conn = await self._engine.connect()
            try:
                got = bool((await conn.execute(_TRY, self._keys())).scalar())
                if got:
                    await conn.execute(_KEEPALIVE)
            except BaseException:
                await _discard(conn)
                raise
            if not got:
                await conn.close()
                return False
            self._conn = conn
            log.info("lease %s taken", self.name)
            return True

    async def release(self) -> None:
        """Gives the lease up (a draining service): another process takes it on its next ask."""
        async with self._guard:
            conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await conn.execute(_UNLOCK, self._keys())
        except Exception:
            await _discard(conn)  # the lock ends with the connection
            return
        await conn.close()

    async def _alive(self, conn: AsyncConnection) -> bool:
        try:
            await conn.execute(_PING)
            return True
        except Exception:
            log.warning("lease %s: its connection was lost; asking for the lease again", self.name)
            await _discard(conn)
            return False

    def _keys(self) -> dict[str, object]:
        return {"space": _SPACE, "name": self.name}


async def _discard(conn: AsyncConnection) -> None:
    """Never back to the pool: a pooled connection would keep the lock for whoever gets it."""
    with contextlib.suppress(Exception):
        await conn.invalidate()
    with contextlib.suppress(Exception):
        await conn.close()
