"""Rows that are only needed for a while (idempotency keys and their first answers): deleted once
older than their retention, in bounded batches, like the relay prunes the outbox and inbox.

A service registers a table with `ServiceRuntime.add_expiry`; every replica sweeps, and deleting
what another replica already deleted is harmless.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from opentelemetry import metrics
from sqlalchemy import Table, delete, select, tuple_
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
