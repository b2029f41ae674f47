"""Async SQLAlchemy engines and units of work for PostgreSQL (asyncpg) and SQLite (aiosqlite)."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import MetaData, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from loopkit.events import WROTE_EVENTS

log = logging.getLogger(__name__)
T = TypeVar("T")
# Where `on_commit` keeps a session's effects until its commit (the consumer's batches read it).
COMMIT_EFFECTS = "loopkit.on_commit"

# One naming convention for every service's constraints, so migrations name them predictably.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def is_sqlite(engine_or_url: AsyncEngine | str) -> bool:
    if not isinstance(engine_or_url, str):
        # The engine's dialect knows (parsing its URL again cost ~40 us per unit of work).
        return bool(engine_or_url.dialect.name == "sqlite")
    return make_url(engine_or_url).get_backend_name() == "sqlite"


def conflict_insert(target: AsyncSession | str, table: Any) -> Any:
    """An INSERT into `table` with the `on_conflict_do_nothing` / `on_conflict_do_update`
    clauses of the database behind `target` (a session, or a dialect name): PostgreSQL's, else
    SQLite's, the two the services run on."""
    name = target if isinstance(target, str) else target.get_bind().dialect.name
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(table)


def create_engine(url: str, *, pool_size: int = 10, overflow: bool = True) -> AsyncEngine:
    """An engine tuned for the backend: SQLite gets WAL, a busy timeout and serialised writers.

    PostgreSQL: a pool keeping `pool_size` connections. `overflow` True also lets it open as many
    again for a moment; False (what a service's runtime uses) opens at most `pool_size`, and a
    checkout beyond waits for one. Overflow connections are closed as they are returned to a
    full pool, so a load with more units of work in flight than the pool keeps opens and closes
    a connection per checkout: each a PostgreSQL backend forked, a TLS request refused, an
    authentication and an exit (identity's resolve at 64 callers opened ~15 a second, CPU that
    no live process accounts for)."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _tune_sqlite(engine)
        return engine
    # No pool_pre_ping: it costs a round trip on every checkout. A connection the server dropped
    # fails its first statement instead, SQLAlchemy invalidates the pool, and `transact` runs the
    # unit of work again on a fresh connection.
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size if overflow else 0,
        connect_args={"server_settings": dict(SERVER_SETTINGS)},
    )


# Sent with every PostgreSQL connection's startup message (no round trip of their own).
# jit off: the server compiles a plan costlier than `jit_above_cost` (100,000: a scan of a few
# hundred thousand rows, e.g. a segment read from activity's heap at 1M customers) with LLVM
# first, 41-99 ms a statement in EXPLAIN there, for no measurable gain in the statements these
# services run. bench/README.md, "segment5", has the figures.
SERVER_SETTINGS = {"jit": "off"}


def _tune_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        reading = bool(conn.get_execution_options().get(READ_ONLY))
        # A read's connection is `query_only`: a write in it fails at once ("attempt to write a
        # readonly database") instead of taking, or waiting for, the write lock. The pragma is
        # the connection's, kept across checkouts: set only when a pooled connection turns from
        # writing to reading or back (`Connection.info` is cleared with the DBAPI connection).
        if conn.info.get(READ_ONLY, False) is not reading:
            conn.exec_driver_sql(f"PRAGMA query_only={int(reading)}")
            conn.info[READ_ONLY] = reading
        if reading:
            # A read (see `reader`): a snapshot and no write lock; WAL readers never block the
            # writer.
            conn.exec_driver_sql("BEGIN")
            return
        # IMMEDIATE takes the write lock up front: read-then-write transactions never deadlock
        # upgrading their lock, and concurrent writers queue on busy_timeout instead of failing.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# The execution option `reader` sets.
READ_ONLY = "loopkit_read_only"


def reader(engine: AsyncEngine) -> AsyncEngine:
    """The engine for SQLite transactions that only read: they begin DEFERRED instead of
    IMMEDIATE, so they neither wait for nor hold up the one writer, on a `query_only`
    connection (a write fails). PostgreSQL: the engine itself (`reader_sessions` makes its
    transactions READ ONLY)."""
    if is_sqlite(engine):
        return engine.execution_options(**{READ_ONLY: True})
    return engine


class _ReadSession(Session):
    """A PostgreSQL session of `reader_sessions`: its transactions begin READ ONLY."""


# Set in a read's session.info before its first statement: REPEATABLE READ (`transact_read`).
_SNAPSHOT = "loopkit_snapshot"


@event.listens_for(_ReadSession, "after_begin")
def _begin_read_only(session: Session, _transaction: Any, connection: Any) -> None:
    # SQLAlchemy's asyncpg adapter sends its BEGIN just before the first statement, reading
    # these (`BEGIN [ISOLATION LEVEL REPEATABLE READ] READ ONLY`: the same one round trip).
    # Set here, in the statement's own greenlet switch; `_writable_again` resets them. An
    # engine option would do it with connection listeners, ~90 Python calls every statement.
    adapted = connection.connection.dbapi_connection
    adapted.readonly = True
    if session.info.get(_SNAPSHOT):
        adapted.isolation_level = "repeatable_read"


def _writable_again(adapted: Any, _record: Any) -> None:
    """A connection a read used (`_ReadSession`) goes back to the pool writing again. Checkin
    comes before the pool hands it out again, even while its reset awaits its ROLLBACK."""
    if adapted is not None and getattr(adapted, "readonly", False):
        adapted.readonly = False
        adapted.isolation_level = adapted._isolation_setting


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


# Per session factory, the same factory on its engine's `reader` (made once, not per call).
_READERS: weakref.WeakKeyDictionary[
    async_sessionmaker[AsyncSession], async_sessionmaker[AsyncSession]
] = weakref.WeakKeyDictionary()


def reader_sessions(
    sessions: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    """`sessions` for units of work that only read, and cannot write (same pool). SQLite:
    `reader`'s deferred BEGIN, which neither waits for the one writer nor holds it up, on a
    `query_only` connection. PostgreSQL: transactions that begin READ ONLY."""
    found = _READERS.get(sessions)
    if found is None:
        engine = sessions.kw["bind"]
        if is_sqlite(engine):
            found = async_sessionmaker(reader(engine), expire_on_commit=False)
        else:
            # A pool event, not a connection event: connection listeners cost every statement.
            if not event.contains(engine.sync_engine, "checkin", _writable_again):
                event.listen(engine.sync_engine, "checkin", _writable_again)
            found = async_sessionmaker(
                engine, expire_on_commit=False, sync_session_class=_ReadSession
            )
        _READERS[sessions] = found
    return found


# Per session factory, its engine in autocommit mode (making one costs ~0.1 ms: not per call).
_AUTOCOMMIT: weakref.WeakKeyDictionary[async_sessionmaker[AsyncSession], AsyncEngine] = (
    weakref.WeakKeyDictionary()
)


def _new_session(sessions: async_sessionmaker[AsyncSession], autocommit: bool) -> AsyncSession:
    engine: AsyncEngine = sessions.kw["bind"]
    # SQLite keeps its transaction: its writers are serialised by BEGIN IMMEDIATE, and the work's
    # statements are local calls, not round trips.
    if not autocommit or is_sqlite(engine):
        return sessions()
    bound = _AUTOCOMMIT.get(sessions)
    if bound is None:
        bound = _AUTOCOMMIT[sessions] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return sessions(bind=bound)


@asynccontextmanager
async def unit_of_work(
    sessions: async_sessionmaker[AsyncSession], *, autocommit: bool = False
) -> AsyncIterator[AsyncSession]:
    """One transaction: commits on success, rolls back on any exception.

    `autocommit`: on PostgreSQL, no BEGIN and COMMIT round trips; each statement commits alone.
    Only for work whose every write is a single statement, atomic by itself.
    """
    async with _new_session(sessions, autocommit) as session, session.begin():
        yield session


# PostgreSQL failed the transaction to break a deadlock (40P01) or a serialization conflict
# (40001): it runs again. Matched by SQLSTATE: the message is translated on a server whose
# lc_messages is not English (zh_CN: "检测到死锁"), which the words alone missed.
RETRY_SQLSTATES = frozenset({"40P01", "40001"})


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, IntegrityError):
        return True  # a concurrent writer won a unique race; the retry will see its row
    if isinstance(exc, OperationalError | DBAPIError):
        if getattr(exc.orig, "sqlstate", None) in RETRY_SQLSTATES:
            return True
        text = str(exc).lower()
        return any(s in text for s in ("deadlock", "could not serialize", "database is locked"))
    return False


def is_contention(exc: BaseException) -> bool:
    """A deadlock, a serialization failure or SQLite's busy lock: the luck of two transactions'
    timing, not a fault of the work (a unique-key race is not counted here: it may be a bug)."""
    return not isinstance(exc, IntegrityError) and _retryable(exc)


def is_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or dropped the connection: worth a retry, not a bug."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig if exc.orig is not None else exc
    if isinstance(exc, TimeoutError):
        return False  # a deadline, handled as such by the caller
    # asyncpg's own names for "the server went away" / "the server is starting up".
    lost = {"ConnectionDoesNotExistError", "CannotConnectNowError"}
    return isinstance(exc, OSError) or type(exc).__name__ in lost


async def transact(
    sessions: async_sessionmaker[AsyncSession],
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    attempts: int = 5,
    reconnects: int = 2,
    after_commit: Callable[[], None] | None = None,
    autocommit: bool = False,
    retry_races: bool = True,
) -> T:
    """Run `work` in one transaction, retrying on unique-key races and deadlocks.

    A connection found dead before the commit (the database restarted since it was pooled) is
    replaced and the work run again, up to `reconnects` times; one lost during the commit is not,
    since the commit may have happened. `after_commit` (the outbox relay's wake-up) is called only
    when the transaction wrote events. `autocommit`: see `unit_of_work`. `retry_races` False:
    an IntegrityError is raised at once (the caller has another way for that case). The caller
    (a request or a consumer) owns the unit of work; domain services never commit.
    """
    attempt = 0
    alone = autocommit and not is_sqlite(sessions.kw["bind"])
    while True:
        committing = False
        try:
            if alone:
                async with _new_session(sessions, True) as session:
                    result = await work(session)
                    committing = True
                    await _statements_done(session)
            else:
                async with unit_of_work(sessions, autocommit=autocommit) as session:
                    result = await work(session)
                    committing = True
        except Exception as exc:
            if not committing and reconnects > 0 and is_unavailable(exc):
                reconnects -= 1
                log.info("unit of work found its connection dead; retrying on a fresh one")
                continue
            attempt += 1
            if attempt >= attempts or not _retryable(exc):
                raise
            if not retry_races and isinstance(exc, IntegrityError):
                raise
            log.info("retrying unit of work after %s (attempt %d)", type(exc).__name__, attempt)
            await asyncio.sleep(0.005 * attempt)
            continue
        if after_commit is not None and wrote_events(session):
            after_commit()
        return result


async def transact_read(
    sessions: async_sessionmaker[AsyncSession],
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    attempts: int = 5,
    snapshot: bool = False,
) -> T:
    """`transact` for work that only reads, on `reader_sessions`: on SQLite beside the one
    writer instead of behind it; a write in it fails (SQLite: `query_only`; PostgreSQL: READ
    ONLY, in the same BEGIN statement, no round trip more). `snapshot`: every read of it sees
    the same committed state (`one_snapshot`, which cannot be called inside)."""
    if not snapshot:
        return await transact(reader_sessions(sessions), work, attempts=attempts)

    async def in_one_snapshot(session: AsyncSession) -> T:
        session.info[_SNAPSHOT] = True  # before the first statement: `_begin_read_only`
        return await work(session)

    return await transact(reader_sessions(sessions), in_one_snapshot, attempts=attempts)


async def _statements_done(session: AsyncSession) -> None:
    """The end of autocommit work on PostgreSQL: each statement committed as it ran, so there is
    no transaction to commit. `begin()` / `commit()` around it cost ~80 Python calls and two
    greenlet switches per unit, a fifth of a new lead's write, for no round trip: skipped unless
    ORM changes are still pending (the commit flushes them). The `on_commit` effects run as
    after a commit, since the statements have committed."""
    # `Session._is_clean` (what its flush asks): ~0.2 us, where the public `new`, `dirty` and
    # `deleted` build three sets through the async proxy, ~19 us here.
    if not session.sync_session._is_clean():
        await session.commit()
    else:
        run_commit_effects(session)


def on_commit(session: AsyncSession | Session, effect: Callable[[], None]) -> None:
    """Run `effect` once the transaction `session` is in commits; never if it rolls back."""
    session.info.setdefault(COMMIT_EFFECTS, []).append(effect)


def run_commit_effects(session: AsyncSession | Session) -> None:
    """The `on_commit` effects of a session whose writes have committed, each once."""
    for effect in session.info.pop(COMMIT_EFFECTS, ()):
        try:
            effect()
        except Exception:  # committed already: a failing effect must not look like a failed unit
            log.exception("after-commit effect %r failed", effect)


@event.listens_for(Session, "after_commit")
def _run_effects(session: Session) -> None:
    if not session.in_nested_transaction():  # a savepoint released: the outer may roll back
        run_commit_effects(session)


@event.listens_for(Session, "after_rollback")
def _drop_effects(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(COMMIT_EFFECTS, None)


async def one_snapshot(session: AsyncSession) -> None:
    """Make every read of this transaction see the same committed state. Call it before the
    transaction's first statement (later, it changes nothing). PostgreSQL's default READ COMMITTED
    takes a snapshot per statement, so a balance and its ledger read one after the other can
    straddle another commit; REPEATABLE READ takes one for the whole transaction. SQLite has one
    writer and reads inside a transaction already agree. A read asks `transact_read` for it
    with `snapshot=True` instead (its READ ONLY BEGIN is set before its first statement)."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        if isinstance(session.sync_session, _ReadSession):
            raise RuntimeError("one_snapshot in a read: pass snapshot=True to transact_read")
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def wrote_events(session: AsyncSession) -> bool:
    """Whether the session's transaction wrote outbox rows (see `loopkit.events.Outbox`)."""
    return bool(session.info.get(WROTE_EVENTS))
