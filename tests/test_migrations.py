"""`closedloop migrate` as the chart's Job and init container run it, against real PostgreSQL:
each service's revision in a version table of its own, a shared database refused with a reason
instead of silently skipped, a database migrated before that change adopted, the target database
reached without the `postgres` one, and a database server that is still starting waited for."""

from __future__ import annotations

import asyncio
import threading

import pytest
from alembic.script import ScriptDirectory
from pg_cluster import ThrowawayCluster
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from loopkit.runner import PlatformError, load_services, migrate
from loopkit.runtime import ServiceDefinition
from loopkit.settings import Settings
from loopkit.testing import PostgresServer


def _definitions() -> dict[str, ServiceDefinition]:
    return {service.name: definition for service, definition in load_services()}


def _migrate(service: str, url: str, wait_s: float = 0.0) -> None:
    migrate(
        service, _definitions()[service], Settings(service=service, database_url=url), wait_s=wait_s
    )


def _head(service: str) -> str:
    """The newest revision of a service's migrations (what a migrated database records)."""
    head = ScriptDirectory(str(_definitions()[service].migrations_dir)).get_current_head()
    assert head is not None
    return head


def _tables(url: str) -> set[str]:
    async def read() -> set[str]:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _execute(url: str, *statements: str, autocommit: bool = False) -> list[object]:
    async def run() -> list[object]:
        engine = create_async_engine(
            url, poolclass=NullPool, isolation_level="AUTOCOMMIT" if autocommit else None
        )
        try:
            async with engine.begin() as conn:
                results = [await conn.execute(text(s)) for s in statements]
                return [r.scalar() if r.returns_rows else None for r in results]
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.fixture
def database(postgres: PostgresServer) -> str:
    return asyncio.run(postgres.fresh_database("closedloop_migrate"))


def test_each_service_records_its_revision_in_a_table_of_its_own(database: str) -> None:
    _migrate("identity", database)
    tables = _tables(database)
    assert "alembic_version_identity" in tables
    assert "alembic_version" not in tables
    assert _execute(database, "SELECT version_num FROM alembic_version_identity") == [
        _head("identity")
    ]
    _migrate("identity", database)  # again: nothing to do, no error


def test_a_database_shared_by_two_services_is_refused_not_skipped(database: str) -> None:
    _migrate("identity", database)
    with pytest.raises(PlatformError) as refused:
        _migrate("acquisition", database)
    message = str(refused.value)
    assert "already holds the schema of identity" in message
    assert "{service}" in message
    assert "alembic_version_acquisition" not in _tables(database)


def test_a_database_migrated_with_the_old_shared_version_table_is_adopted(database: str) -> None:
    _migrate("identity", database)
    # What a deployment migrated before the per-service table has: Alembic's default table.
    _execute(database, "ALTER TABLE alembic_version_identity RENAME TO alembic_version")
    # Without adoption this would run 0001 again and fail on the existing tables.
    _migrate("identity", database)
    tables = _tables(database)
    assert "alembic_version" not in tables
    assert _execute(database, "SELECT version_num FROM alembic_version_identity") == [
        _head("identity")
    ]


def test_an_old_version_table_of_another_service_is_refused(database: str) -> None:
    _migrate("identity", database)
    _execute(database, "ALTER TABLE alembic_version_identity RENAME TO alembic_version")
    # Before the fix, acquisition found revision 0001 here and reported itself migrated.
    with pytest.raises(PlatformError) as refused:
        _migrate("acquisition", database)
    assert "none of acquisition's tables" in str(refused.value)
    assert "campaigns" not in _tables(database)


def test_migrations_reach_an_existing_database_without_the_postgres_one(
    unstarted_cluster: ThrowawayCluster,
) -> None:
    unstarted_cluster.start()
    base = f"postgresql+asyncpg://postgres@127.0.0.1:{unstarted_cluster.port}"
    # Managed PostgreSQL often lets an application user reach its own database only.
    _execute(
        f"{base}/template1",
        "CREATE DATABASE closedloop_identity",
        "DROP DATABASE postgres",
        autocommit=True,
    )
    _migrate("identity", f"{base}/closedloop_identity")
    assert "alembic_version_identity" in _tables(f"{base}/closedloop_identity")


def test_migrate_waits_for_a_database_server_that_is_still_starting(
    unstarted_cluster: ThrowawayCluster,
) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{unstarted_cluster.port}/closedloop_identity"
    # The server starts a moment after the migration began, as the bundled PostgreSQL pod does.
    starter = threading.Timer(1.0, unstarted_cluster.start)
    starter.start()
    try:
        _migrate("identity", url, wait_s=60)
    finally:
        starter.join()
    assert "alembic_version_identity" in _tables(url)


def test_without_waiting_an_unreachable_database_fails_with_its_address(
    unstarted_cluster: ThrowawayCluster,
) -> None:
    url = f"postgresql+asyncpg://postgres:secret@127.0.0.1:{unstarted_cluster.port}/closedloop_identity"
    with pytest.raises(PlatformError) as failed:
        _migrate("identity", url)
    assert f"127.0.0.1:{unstarted_cluster.port}/closedloop_identity" in str(failed.value)
    assert "secret" not in str(failed.value)
