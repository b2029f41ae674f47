"""Leases (loopkit.leases): one replica at a time holds a lease, until it lets go, drains or loses
its database connection; then another takes it on its next ask."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kit_testbed import Database
from loopkit import db
from loopkit.leases import ReplicaLease
from loopkit_dev.testing import PostgresServer, eventually


@pytest_asyncio.fixture(loop_scope="session")
async def replicas(database: Database) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two replicas' engines on one database (each its own pool, as two pods)."""
    engines = (db.create_engine(database.url, pool_size=2), db.create_engine(database.url))
    yield engines
    for engine in engines:
        await engine.dispose()


async def test_one_replica_holds_a_lease_until_it_lets_go(
    database: Database, replicas: tuple[AsyncEngine, AsyncEngine]
) -> None:
    a, b = (ReplicaLease(engine, "gauges") for engine in replicas)
    if database.backend == "sqlite":
        # One process only (several are refused on SQLite): it always holds its leases.
        assert await a.held() and await b.held()
        return
    assert await a.held()
    assert not await b.held()
    assert await a.held(), "the holder keeps it round after round"
    assert not await b.held()
    assert a.holding and not b.holding
    # Another lease of the same replicas is independent.
    sweeps = ReplicaLease(replicas[1], "sweeps")
    assert await sweeps.held()
    await sweeps.release()

    await a.release()  # a draining replica
    assert await b.held()
    assert not await a.held()
    # Its pooled connection went back without the lock: a replica using its pool holds nothing.
    async with replicas[0].connect() as conn:
        held = await conn.execute(
            text(
                "SELECT count(*) FROM pg_locks"
                " WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            )
        )
        assert held.scalar() == 0
    await b.release()


async def test_a_holder_that_lost_its_connection_gives_the_lease_to_another_replica(
    postgres: PostgresServer,
) -> None:
    url = await postgres.fresh_database("loopkit_test")
    a_engine, b_engine, admin = (db.create_engine(url) for _ in range(3))
    try:
        a, b = ReplicaLease(a_engine, "gauges"), ReplicaLease(b_engine, "gauges")
        assert await a.held()
        assert not await b.held()
        # The holder's session ends (a database failover, a network cut, an operator).
        async with admin.connect() as conn:
            ended = await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"
                )
            )
            assert ended.scalars().all() == [True]
        await eventually(b.held)
        # The old holder notices at its next ask, and does not take it back.
        assert not await a.held()
        assert not a.holding
        await b.release()
        assert await a.held()
        await a.release()
    finally:
        for engine in (a_engine, b_engine, admin):
            await engine.dispose()
