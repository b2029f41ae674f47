"""The relay that moves committed outbox rows to JetStream.

At-least-once from the database's side, exactly-once on the stream: every row is published with
`Nats-Msg-Id` = event id, so a relay that dies after publishing but before marking the row sent
re-publishes on restart and JetStream drops the duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from nats.js import JetStreamContext
from opentelemetry import metrics
from sqlalchemy import Row, Select, delete, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from loopkit.db import is_sqlite, reader
from loopkit.jetstream import Publisher
from loopkit.pii import Sealer
from loopkit.raw_sql import fetch_on
from loopkit.tables import KitTables

log = logging.getLogger(__name__)
_meter = metrics.get_meter("loopkit.outbox")
_published = _meter.create_counter(
    "closedloop_outbox_published", unit="{event}", description="Events relayed to JetStream"
)
_duplicates = _meter.create_counter(
    "closedloop_outbox_duplicates",
    unit="{event}",
    description="Re-published events JetStream recognised as duplicates",
)
_pruned = _meter.create_counter(
    "closedloop_retention_pruned",
    unit="{row}",
    description="Sent outbox rows and old inbox rows deleted after their retention",
)
_backlog = _meter.create_gauge(
    "closedloop_outbox_backlog",
    unit="{event}",
    description="Committed events not yet relayed to JetStream (rows waiting in the outbox)",
)


# The two-key advisory lock space of relay claims (a one-key lock, as identity takes, never
# conflicts with a two-key one). The second key is a hash of the row id.
_CLAIM_SPACE = 0x0B0C
# PostgreSQL's statements of a pass, sent straight on the pass's asyncpg connection
# (`loopkit.raw_sql`): SQLAlchemy's execute path (compiled cache, parameter and result processing,
# a greenlet per statement) was most of a short pass's CPU, and a pass runs every few events.
_CLAIM = (
    # The inner LIMIT keeps the try-lock from being evaluated on every pending row: a relay locks
    # at most two batches' worth of candidates, skipping rows another replica holds.
    "SELECT id FROM (SELECT id FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1)"
    " AS candidates WHERE pg_try_advisory_lock($2, hashtext(id)) LIMIT $3"
)
_FETCH = (
    "SELECT id, subject, data, headers::text AS headers FROM outbox"
    " WHERE id = ANY($1::text[]) AND published_at IS NULL ORDER BY id"
)
_MARK = "UPDATE outbox SET published_at = $1 WHERE id = ANY($2::text[])"
_DROP = "DELETE FROM outbox WHERE id = ANY($1::text[])"
_RELEASE = "SELECT pg_advisory_unlock_all()"


class _Pending(NamedTuple):
    id: str
    subject: str
    data: bytes
    headers: dict[str, str]


class OutboxRelay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tables: KitTables,
        js: JetStreamContext,
        *,
        batch_size: int = 200,
        poll_interval_s: float = 0.5,
        publish_timeout_s: float = 10.0,
        coalesce_s: float = 0.002,
        outbox_retention_s: float = 3600.0,
        inbox_retention_s: float = 15 * 86400.0,
        sweep_interval_s: float = 60.0,
        inbox_sweep_interval_s: float = 3600.0,
        sweep_batch_size: int = 1000,
        sealer: Sealer | None = None,
    ) -> None:
        self._sessions = sessions
        # Seals personal values under their customer's key before they reach the stream
        # (loopkit.pii); None publishes rows as written (kit tests of the relay alone).
        self._sealer = sealer
        self._engine: AsyncEngine = sessions.kw["bind"]
        # Reads that take no write lock on SQLite (an idle poll must not hold up the service).
        self._reader = reader(self._engine)
        self._outbox = tables.outbox
        self._inbox = tables.inbox
        self._outbox_retention = timedelta(seconds=outbox_retention_s)
        self._inbox_retention = timedelta(seconds=inbox_retention_s)
        self._sweep_interval_s = sweep_interval_s
        self._sweep_batch_size = sweep_batch_size
        # The inbox has no index on processed_at (the sweep scans it), and its rows carry no
        # personal data: swept less often than the outbox, which has one.
        self._inbox_sweep_interval_s = inbox_sweep_interval_s
        self._next_sweep = self._next_inbox_sweep = 0.0  # monotonic; the first pass sweeps
        self._js = js
        # Each batch as one write, its acks awaited together (loopkit.jetstream).
        self._publisher = Publisher(js._nc)
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._publish_timeout_s = publish_timeout_s
        self._coalesce_s = coalesce_s
        self._wakeup = asyncio.Event()
        self._postgres = not is_sqlite(self._engine)
        # Each claim, read and mark is its own statement; none waits inside a transaction.
        self._autocommit = self._engine.execution_options(isolation_level="AUTOCOMMIT")

    def wake(self) -> None:
        """Called after a commit that wrote events, so they leave now, not at the next poll."""
        self._wakeup.set()

    def awaiting_acks(self) -> int:
        """How many JetStream acks the batch being published still waits for (0: none is)."""
        return self._publisher.awaiting

    async def backlog(self) -> int:
        async with self._reader.connect() as conn:
            stmt = select(func.count()).where(self._outbox.c.published_at.is_(None))
            return int((await conn.execute(stmt)).scalar_one())

    async def publish_pending(self) -> int:
        """One batch: publish unsent rows in id order and mark them sent. Returns how many."""
        if not self._postgres:
            return await self._publish_pending_sqlite()
        # No transaction is open while JetStream acks: the rows are claimed with session-level
        # advisory locks, which other replicas skip, and which end with this connection should the
        # process die (then another relay re-publishes the rows and JetStream drops duplicates).
        async with self._autocommit.connect() as conn:
            holding = True  # until the claim answers: a claim that failed midway may hold some
            try:
                ids = await self._claim(conn)
                # The claim locks exactly the rows it returns (its LIMIT stops the try-locks), so
                # an empty one holds nothing: an idle poll or a wake-up whose rows an earlier pass
                # took costs one round trip, not two.
                holding = bool(ids)
                if not ids:
                    return 0
                rows = await self._read(conn, ids)
                if not rows:
                    return 0
                duplicates, personal = await self._publish(rows)
                await self._mark_sent(conn, [row.id for row in rows], personal)
            finally:
                if holding:
                    await self._release(conn)
        self._count(len(rows), duplicates)
        return len(rows)

    async def _claim(self, conn: AsyncConnection) -> list[str]:
        n = self._batch_size
        return [row[0] for row in await fetch_on(conn, _CLAIM, 2 * n, _CLAIM_SPACE, n)]

    async def _read(self, conn: AsyncConnection, ids: list[str]) -> list[_Pending]:
        # Read again in a snapshot taken after the locks: a row another replica marked sent just
        # before releasing its lock is visible as sent now, and is not published twice. (One
        # statement cannot both lock and read after its locks: its snapshot predates them.)
        return [
            _Pending(row[0], row[1], row[2], json.loads(row[3]))
            for row in await fetch_on(conn, _FETCH, ids)
        ]

    async def _release(self, conn: AsyncConnection) -> None:
        try:
            await fetch_on(conn, _RELEASE)
        except BaseException:
            # A connection that cannot say it let go must not go back to the pool holding locks.
            await conn.invalidate()
            raise

    async def _mark_sent(self, conn: AsyncConnection, ids: list[str], personal: set[str]) -> None:
        # A row whose event named a person is deleted once published rather than kept for the
        # outbox retention: its plain-text copy would outlive an erasure (docs/operations.md).
        kept = [i for i in ids if i not in personal]
        if self._postgres:  # one prepared statement whatever the batch's size
            if kept:
                await fetch_on(conn, _MARK, datetime.now(UTC), kept)
            if personal:
                await fetch_on(conn, _DROP, sorted(personal))
            return
        if kept:
            await conn.execute(
                update(self._outbox)
                .where(self._outbox.c.id.in_(kept))
                .values(published_at=datetime.now(UTC))
            )
        if personal:
            await conn.execute(delete(self._outbox).where(self._outbox.c.id.in_(personal)))

    async def _publish_pending_sqlite(self) -> int:
        # SQLite has one write lock for the whole database, and every transaction takes it: a
        # transaction held open while waiting for JetStream's acks (up to publish_timeout_s when
        # NATS is down) would stall every write of the service. So read, publish and mark sent in
        # separate steps; a crash in between re-publishes, and JetStream drops the duplicates.
        # (One relay per SQLite database: it is a single-process setup.) The read takes no write
        # lock (a deferred BEGIN, `loopkit.db.reader`): an idle poll never holds up a writer, and
        # only a pass that found rows writes (its mark).
        async with self._reader.connect() as conn:
            rows = (await conn.execute(self._pending())).all()
        if not rows:
            return 0
        duplicates, personal = await self._publish(rows)
        async with self._engine.begin() as conn:
            await self._mark_sent(conn, [row.id for row in rows], personal)
        self._count(len(rows), duplicates)
        return len(rows)

    def _pending(self) -> Select[tuple[str, str, bytes, dict[str, str]]]:
        return (
            select(
                self._outbox.c.id,
                self._outbox.c.subject,
                self._outbox.c.data,
                self._outbox.c.headers,
            )
            .where(self._outbox.c.published_at.is_(None))
            .order_by(self._outbox.c.id)
            .limit(self._batch_size)
        )

    async def _publish(
        self, rows: Sequence[_Pending | Row[tuple[str, str, bytes, dict[str, str]]]]
    ) -> tuple[int, set[str]]:
        """Publish and wait for every ack; returns how many JetStream already had, and the ids
        of the rows whose events carried personal data."""
        datas = [row.data for row in rows]
        personal: set[str] = set()
        if self._sealer is not None:
            sealed = await self._sealer.seal_all(datas)
            datas = [s.data for s in sealed]
            personal = {row.id for row, s in zip(rows, sealed, strict=True) if s.personal}
        batch = [(row.subject, data, row.headers) for row, data in zip(rows, datas, strict=True)]
        duplicates = await self._publisher.publish_all(batch, self._publish_timeout_s)
        return duplicates, personal

    def _count(self, published: int, duplicates: int) -> None:
        _published.add(published)
        if duplicates:
            _duplicates.add(duplicates)
            log.info("outbox: %d of %d events were already on the stream", duplicates, published)

    async def prune(self, *, inbox: bool = True) -> tuple[int, int]:
        """Delete sent outbox rows and inbox rows past their retention; returns (outbox, inbox).

        Erasure (docs/operations.md): a sent row is a copy of personal data the stream already
        holds, so it must not outlive the forget that erases the service's own tables for long.
        Deleted in bounded batches, each its own short transaction, so the pass never holds
        SQLite's write lock or a large PostgreSQL row set for long. Replicas may sweep at once:
        deleting what another already deleted is harmless.
        """
        now = datetime.now(UTC)
        o, i = self._outbox.c, self._inbox.c
        sent = (
            select(o.id)
            .where(o.published_at.is_not(None), o.published_at < now - self._outbox_retention)
            .limit(self._sweep_batch_size)
        )
        old = (
            select(i.consumer, i.event_id)
            .where(i.processed_at < now - self._inbox_retention)
            .limit(self._sweep_batch_size)
        )
        outbox = await self._delete_batches(delete(self._outbox).where(o.id.in_(sent)))
        inboxed = 0
        if inbox:
            inboxed = await self._delete_batches(
                delete(self._inbox).where(tuple_(i.consumer, i.event_id).in_(old))
            )
        if outbox or inboxed:
            _pruned.add(outbox + inboxed)
            log.info("retention: deleted %d sent outbox rows, %d inbox rows", outbox, inboxed)
        return outbox, inboxed

    async def _delete_batches(self, stmt: Any) -> int:
        total = 0
        while True:
            async with self._engine.begin() as conn:
                deleted = int((await conn.execute(stmt)).rowcount or 0)
            total += deleted
            if deleted < self._sweep_batch_size:
                return total

    async def _sweep_if_due(self) -> None:
        if time.monotonic() < self._next_sweep:
            return
        self._next_sweep = time.monotonic() + self._sweep_interval_s
        inbox = time.monotonic() >= self._next_inbox_sweep
        if inbox:
            self._next_inbox_sweep = time.monotonic() + self._inbox_sweep_interval_s
        try:
            await self.prune(inbox=inbox)
        except Exception as exc:
            log.warning("retention sweep failed (retried next interval): %s", exc)

    async def flush(self, timeout_s: float = 10.0) -> None:
        """Publish until the outbox is empty (used on graceful shutdown)."""
        async with asyncio.timeout(timeout_s):
            while await self.publish_pending():
                pass

    async def run(self, stop: asyncio.Event) -> None:
        # Exported from the start, so dashboards and alerts see 0 rather than "no data".
        _published.add(0)
        _duplicates.add(0)
        _pruned.add(0)
        while not stop.is_set():
            # Cleared before the pass: a wake-up during it triggers another pass, never a wait.
            self._wakeup.clear()
            try:
                while await self.publish_pending() == self._batch_size:
                    pass  # a full batch: there may be more waiting
                _backlog.set(0)
            except Exception as exc:
                # NATS or the database is away; the rows stay and the next pass retries them.
                log.warning("outbox relay pass failed: %s", exc)
                with contextlib.suppress(Exception):  # the database may be the one away
                    _backlog.set(await self.backlog())
            await self._sweep_if_due()  # needs only the database: runs while NATS is away too
            waiters = [
                asyncio.ensure_future(self._wakeup.wait()),
                asyncio.ensure_future(stop.wait()),
            ]
            await asyncio.wait(
                waiters, timeout=self._poll_interval_s, return_when=asyncio.FIRST_COMPLETED
            )
            for w in waiters:
                w.cancel()
            if self._wakeup.is_set() and not stop.is_set():
                # The first commit of a burst woke us: give the rest a moment to commit too, so
                # the burst leaves as one batch rather than a pass per event.
                await asyncio.sleep(self._coalesce_s)
