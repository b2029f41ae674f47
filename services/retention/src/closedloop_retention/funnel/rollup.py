"""The funnel's per-day rollup (funnel_daily, funnel_gap_buckets), kept in the transaction that
changes funnel_steps.

Every repository method that inserts, moves, deletes or changes a customer's step rows first
calls `track` for that customer: the rows as they were are read once per transaction. The use
case ends with `settle`: the customer's rows as they are now, less those before, give +1 / -1
per (day, step) for the tenant, the row's campaign and its channel, and for the gap's bucket;
they are added with `INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n` (safe under
concurrent consumers), rows sorted so two transactions lock them in the same order.
"""

from __future__ import annotations

import functools
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.clock import utc
from closedloop_retention.models import FunnelDailyRow, FunnelGapBucketRow, FunnelStepRow
from loopkit.db import conflict_insert

# The rollup's dimensions: (dim, which column of the step row names its dim_id, or None).
DIMS: tuple[tuple[str, str | None], ...] = (
    ("all", None),
    ("campaign", "campaign_id"),
    ("channel", "channel_id"),
)

_TEN_YEARS_MS = 10 * 365 * 86400 * 1000


def gap_bounds_ms() -> list[int]:
    """The lower bounds (ms) of the gap buckets: [0, 1 s), then each bucket 2 % (at least 1 ms)
    wider than the one before, up to ten years; the last is open. Integer arithmetic only, so the
    bounds are the same everywhere (migration 0013 writes the same list into funnel_gap_bounds)."""
    bounds = [0, 1000]
    while bounds[-1] < _TEN_YEARS_MS:
        bounds.append(bounds[-1] + max(1, bounds[-1] // 50))
    return bounds


GAP_BOUNDS_MS = gap_bounds_ms()


def bucket_of(gap_s: float) -> int:
    """The bucket holding a gap (as SQL finds it: the last bound <= gap_s * 1000.0)."""
    return max(0, bisect_right(GAP_BOUNDS_MS, gap_s * 1000.0) - 1)


# A step row as the rollup counts it: (step, UTC day, campaign, channel, gap_s or None).
_Counted = tuple[str, date, str, str, float | None]
_TRACKED = "closedloop_retention.funnel.rollup"


@dataclass
class _Tracked:
    transaction: object
    before: dict[tuple[str, str], Counter[_Counted]] = field(default_factory=dict)


def _transaction(session: AsyncSession) -> object:
    return session.sync_session.get_transaction()


def _postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


class FunnelRollup:
    async def track(self, session: AsyncSession, tenant: str, customers: Iterable[str]) -> None:
        """Remember these customers' step rows as they are, before this transaction changes
        them (once per customer and transaction)."""
        tracked = session.info.get(_TRACKED)
        if tracked is None or tracked.transaction is not _transaction(session):
            tracked = None
        fresh = sorted(
            {c for c in customers if tracked is None or (tenant, c) not in tracked.before}
        )
        if not fresh:
            return
        rows = await self._rows(session, tenant, fresh)
        if tracked is None:  # after the read: it began the transaction if nothing had
            tracked = _Tracked(_transaction(session))
            session.info[_TRACKED] = tracked
        for customer in fresh:
            tracked.before[(tenant, customer)] = rows.get(customer, Counter())

    async def settle(self, session: AsyncSession) -> None:
        """Add what changed in the tracked customers' rows to the rollup."""
        tracked = session.info.pop(_TRACKED, None)
        if tracked is None or tracked.transaction is not _transaction(session):
            return
        by_tenant: dict[str, list[str]] = defaultdict(list)
        for tenant, customer in tracked.before:
            by_tenant[tenant].append(customer)
        daily: dict[tuple[Any, ...], int] = defaultdict(int)
        gaps: dict[tuple[Any, ...], list[float]] = defaultdict(lambda: [0, 0.0])
        for tenant, customers in sorted(by_tenant.items()):
            now = await self._rows(session, tenant, customers)
            for customer in customers:
                was, is_ = tracked.before[(tenant, customer)], now.get(customer, Counter())
                for sign, changed in ((1, is_ - was), (-1, was - is_)):
                    for row, times in changed.items():
                        _count(daily, gaps, tenant, row, sign * times)
        await _add(
            session,
            FunnelDailyRow,
            [
                {**_key(k, ("tenant_id", "dim", "dim_id", "day", "step")), "customers": v}
                for k, v in sorted(daily.items())
                if v
            ],
            ("customers",),
        )
        await _add(
            session,
            FunnelGapBucketRow,
            [
                {
                    **_key(k, ("tenant_id", "dim", "dim_id", "day", "step", "bucket")),
                    "n": int(n),
                    "sum_s": s,
                }
                for k, (n, s) in sorted(gaps.items())
                if n or s
            ],
            ("n", "sum_s"),
        )

    async def clear(self, session: AsyncSession) -> None:
        """Empty the rollup (a rebuild replays it from the streams)."""
        session.info.pop(_TRACKED, None)
        for table in (FunnelDailyRow, FunnelGapBucketRow):
            await session.execute(delete(table))

    async def _rows(
        self, session: AsyncSession, tenant: str, customers: Sequence[str]
    ) -> dict[str, Counter[_Counted]]:
        await session.flush()  # the ORM's pending changes (refresh_gaps) first
        s = FunnelStepRow.__table__.c
        conn = await session.connection()
        found = await conn.execute(
            select(s.customer_id, s.step, s.at, s.campaign_id, s.channel_id, s.gap_s).where(
                s.tenant_id == tenant, s.customer_id.in_(customers)
            )
        )
        out: dict[str, Counter[_Counted]] = defaultdict(Counter)
        for customer, step, at, campaign, channel, gap in found:
            out[customer][(step, utc(at).date(), campaign, channel, gap)] += 1
        return out


def _count(
    daily: dict[tuple[Any, ...], int],
    gaps: dict[tuple[Any, ...], list[float]],
    tenant: str,
    row: _Counted,
    delta: int,
) -> None:
    step, day, campaign, channel, gap = row
    ids = {"campaign_id": campaign, "channel_id": channel}
    for dim, column in DIMS:
        dim_id = ids[column] if column else ""
        daily[(tenant, dim, dim_id, day, step)] += delta
        if gap is not None:
            entry = gaps[(tenant, dim, dim_id, day, step, bucket_of(gap))]
            entry[0] += delta
            entry[1] += delta * gap


def _key(values: tuple[Any, ...], names: tuple[str, ...]) -> dict[str, Any]:
    return dict(zip(names, values, strict=True))


@functools.cache
def _upsert(dialect: str, table: Any, counters: tuple[str, ...]) -> Any:
    """INSERT one row, or add its counters to the stored row's (one statement, cached)."""
    t = table.__table__
    stmt = conflict_insert(dialect, t)
    return stmt.on_conflict_do_update(
        index_elements=[c.name for c in t.primary_key.columns],
        set_={c: t.c[c] + getattr(stmt.excluded, c) for c in counters},
    )


async def _add(
    session: AsyncSession, table: Any, rows: list[dict[str, Any]], counters: tuple[str, ...]
) -> None:
    """Add each row's counters to the stored ones (inserted at first), in the rows' order."""
    if rows:
        dialect = session.get_bind().dialect.name
        conn = await session.connection()
        await conn.execute(_upsert(dialect, table, counters), rows)


def day_start(day: date) -> datetime:
    """Midnight UTC of the day."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
