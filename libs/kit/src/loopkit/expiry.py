"""Idempotency keys are kept for CLOSEDLOOP_IDEMPOTENCY_KEY_RETENTION_S, wherever they live, then
forgotten in bounded batches, like the relay prunes the outbox and inbox:

- rows that only exist for a key (a CaptureLead request and its first answer) are deleted
  (`ExpiringRows`, registered with `ServiceRuntime.add_expiry`);
- a key kept as a column of a row that stays (a gateway send, a ledger entry) is set to NULL
  (`ExpiringKeys`, registered with `ServiceRuntime.add_key_expiry`); the column is nullable and
  its unique constraint treats NULLs as distinct, so the same key is then a new request.

Every replica sweeps, and forgetting what another replica already forgot is harmless.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from opentelemetry import metrics
from sqlalchemy import ColumnElement, Table, delete, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)
_expired = metrics.get_meter("loopkit.expiry").create_counter(
    "closedloop_expired_rows",
    description="Rows deleted after their retention (idempotency keys), per table",
)
BATCH_SIZE = 1000


class ExpiringRows:
    """The rows of `table` whose `column` (a timestamp) is older than `retention_s`."""

    def __init__(self, engine: AsyncEngine, table: Table, column: str, retention_s: float) -> None:
        self._engine = engine
        self._table = table
        self._column = table.c[column]
        self._retention = timedelta(seconds=retention_s)
        self.name = table.name

    async def prune(self, now: datetime | None = None) -> int:
        """Delete expired rows, a batch per short transaction; returns how many went."""
        cutoff = (now or datetime.now(UTC)) - self._retention
        key = list(self._table.primary_key.columns)
        old = select(*key).where(self._column < cutoff).limit(BATCH_SIZE)
        stmt = delete(self._table).where(tuple_(*key).in_(old))
        total = 0
        while True:
            async with self._engine.begin() as conn:
                deleted = int((await conn.execute(stmt)).rowcount or 0)
            total += deleted
            if deleted < BATCH_SIZE:
                break
        if total:
            _expired.add(total, {"table": self.name})
            log.info("retention: deleted %d expired rows of %s", total, self.name)
        return total


class ExpiringKeys:
    """The key `column` of the rows of `table` whose `at` (a timestamp) is older than
    `retention_s`, and that match `where` (a send that is finished, a key a client gave)."""

    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        column: str,
        at: str,
        retention_s: float,
        *,
        where: ColumnElement[bool] | None = None,
    ) -> None:
        self._engine = engine
        self._table = table
        self._key = table.c[column]
        self._at = table.c[at]
        self._where = where
        self._retention = timedelta(seconds=retention_s)
        self.name = f"{table.name}.{column}"

    async def prune(self, now: datetime | None = None) -> int:
        """Set expired keys to NULL, a batch per short transaction; returns how many."""
        cutoff = (now or datetime.now(UTC)) - self._retention
        pk = list(self._table.primary_key.columns)
        old = select(*pk).where(self._key.is_not(None), self._at < cutoff)
        if self._where is not None:
            old = old.where(self._where)
        stmt = (
            update(self._table)
            .where(tuple_(*pk).in_(old.limit(BATCH_SIZE)))
            .values({self._key.name: None})
        )
        total = 0
        while True:
            async with self._engine.begin() as conn:
                cleared = int((await conn.execute(stmt)).rowcount or 0)
            total += cleared
            if cleared < BATCH_SIZE:
                break
        if total:
            _expired.add(total, {"table": self.name})
            log.info("retention: cleared %d expired keys of %s", total, self.name)
        return total
