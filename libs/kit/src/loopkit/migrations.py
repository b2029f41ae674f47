"""Alembic per service: each service ships its migrations inside its package.

Each service records its revision in a version table of its own, `alembic_version_<service>`: with
Alembic's shared default (`alembic_version`) and every service's first revision being `0001`, two
services pointed at one database took each other's revision for their own and silently skipped
their schema. A database that already holds another service's schema is refused with a message;
a database migrated before the rename keeps its history (the old table is adopted).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect, pool, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from loopkit.db import create_engine, is_sqlite

log = logging.getLogger(__name__)

LEGACY_VERSION_TABLE = "alembic_version"
VERSION_TABLE_PREFIX = "alembic_version_"
# Tables every service has under the same names (loopkit.tables): they say nothing about whose
# schema a database holds.
_KIT_TABLES = {"outbox", "inbox"}


class MigrationRefused(RuntimeError):
    """The database cannot take this service's schema; the message says what to change."""


def version_table(service: str) -> str:
    return f"{VERSION_TABLE_PREFIX}{service}"


def alembic_config(script_location: Path, url: str, *, service: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.set_main_option("closedloop_service", service)
    return cfg


async def _database_exists(url: str) -> bool:
    """Connect to the target database itself: the usual case (it exists) needs no other one."""
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except DBAPIError as exc:
        # asyncpg's InvalidCatalogNameError: SQLSTATE 3D000, "database ... does not exist".
        if getattr(exc.orig, "sqlstate", None) == "3D000" or "does not exist" in str(exc.orig):
            return False
        raise
    finally:
        await engine.dispose()


async def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in `url` if it does not exist (SQLite makes its own).

    Only a missing database sends us to the `postgres` maintenance database (a user that may
    create databases can reach it); a migration of an existing one never touches it.
    """
    if is_sqlite(url) or await _database_exists(url):
        return
    parsed = make_url(url)
    admin = create_async_engine(
        parsed.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=pool.NullPool
    )
    try:
        async with admin.connect() as conn:
            try:
                await conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
            except DBAPIError as exc:
                # Another replica's migration created it between our two steps.
                if getattr(exc.orig, "sqlstate", None) != "42P04":
                    raise
    finally:
        await admin.dispose()


def wait_for_database(url: str, timeout_s: float) -> None:
    """Retry until the database server answers (a PostgreSQL pod still starting), then return.

    Raises the last connection error after `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            asyncio.run(ensure_database(url))
            return
        except (OSError, OperationalError, DBAPIError) as exc:
            if time.monotonic() >= deadline:
                raise
            log.info("database not reachable yet (%s); retrying", type(exc).__name__)
            time.sleep(2)


def upgrade(script_location: Path, url: str, *, service: str, revision: str = "head") -> None:
    """Apply `service`'s migrations (synchronous; from async code call it through to_thread)."""
    asyncio.run(ensure_database(url))
    command.upgrade(alembic_config(script_location, url, service=service), revision)


def _claim_version_table(
    connection: Connection, service: str, metadata: MetaData, script: ScriptDirectory
) -> None:
    """Before migrating: adopt a pre-rename `alembic_version` that is ours, refuse a database
    that holds another service's schema. Runs in the migration's transaction."""
    tables = set(inspect(connection).get_table_names())
    ours = version_table(service)
    if ours in tables:
        return
    others = sorted(
        t[len(VERSION_TABLE_PREFIX) :] for t in tables if t.startswith(VERSION_TABLE_PREFIX)
    )
    if others:
        raise MigrationRefused(
            f"{service}: this database already holds the schema of {', '.join(others)}; every "
            "service needs a database of its own: put {service} in CLOSEDLOOP_DATABASE_URL "
            "(e.g. .../closedloop_{service}) or give the service its own URL"
        )
    if LEGACY_VERSION_TABLE not in tables:
        return
    legacy = connection.execute(text(f"SELECT version_num FROM {LEGACY_VERSION_TABLE}")).scalar()
    own_tables = set(metadata.tables) - _KIT_TABLES
    known = legacy is not None and any(r.revision == legacy for r in script.walk_revisions())
    if not (known and own_tables & tables):
        raise MigrationRefused(
            f"{service}: this database has an `{LEGACY_VERSION_TABLE}` table (revision "
            f"{legacy}) but none of {service}'s tables: it holds another service's schema. Every "
            "service needs a database of its own: put {service} in CLOSEDLOOP_DATABASE_URL"
        )
    # Ours from before the per-service table: carry the revision over, drop the old table.
    connection.execute(
        text(f"CREATE TABLE {ours} (version_num VARCHAR(32) NOT NULL, PRIMARY KEY (version_num))")
    )
    connection.execute(text(f"INSERT INTO {ours} (version_num) VALUES (:v)"), {"v": legacy})
    connection.execute(text(f"DROP TABLE {LEGACY_VERSION_TABLE}"))
    log.info("%s: adopted revision %s from %s", service, legacy, LEGACY_VERSION_TABLE)


def run_env(target_metadata: MetaData) -> None:
    """The body of every service's migrations/env.py."""
    url = context.config.get_main_option("sqlalchemy.url")
    service = context.config.get_main_option("closedloop_service")
    if url is None or not service:
        raise RuntimeError("sqlalchemy.url and closedloop_service must be set (migrations.upgrade)")
    script = ScriptDirectory.from_config(context.config)

    def migrate(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            # Replicas starting together (init containers) migrate one at a time; the lock is
            # the connection's and goes with it.
            connection.execute(
                text("SELECT pg_advisory_lock(hashtext(:k))"),
                {"k": f"closedloop-migrate-{service}"},
            )
        _claim_version_table(connection, service, target_metadata, script)
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=is_sqlite(url),
            compare_type=True,
            version_table=version_table(service),
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                await conn.run_sync(migrate)
                await conn.commit()
        finally:
            await engine.dispose()

    if context.is_offline_mode():
        context.configure(
            url=url,
            target_metadata=target_metadata,
            literal_binds=True,
            version_table=version_table(service),
        )
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(run())


def create_customer_moves() -> None:
    """For a service's Alembic revision: create the merge move log (`loopkit.tables`), defined
    once so every service that follows identity's merges has the same one."""
    from alembic import op

    from loopkit.db import new_metadata
    from loopkit.tables import customer_moves_table

    customer_moves_table(new_metadata()).create(op.get_bind())


def drop_customer_moves() -> None:
    from alembic import op

    from loopkit.tables import CUSTOMER_MOVES

    op.drop_index("ix_customer_moves_merge", table_name=CUSTOMER_MOVES)
    op.drop_table(CUSTOMER_MOVES)


def create_customer_aliases() -> None:
    """For a service's Alembic revision: create the alias table (`loopkit.tables`)."""
    from alembic import op

    from loopkit.db import new_metadata
    from loopkit.tables import customer_aliases_table

    customer_aliases_table(new_metadata()).create(op.get_bind())


def drop_customer_aliases() -> None:
    from alembic import op

    from loopkit.tables import CUSTOMER_ALIASES

    op.drop_table(CUSTOMER_ALIASES)
