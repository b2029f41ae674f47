"""Every query of the funnel tables (funnel_steps, funnel_orders, funnel_sources,
funnel_aliases). GetFunnel's figures are GROUP BYs over funnel_steps / funnel_orders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, DateTime, TextClause, bindparam, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.clock import utc
from closedloop_retention.funnel.rollup import FunnelRollup, day_start
from closedloop_retention.funnel.views import MEDIAN_PAIRS, FunnelQuery, Granularity
from closedloop_retention.models import (
    FunnelAliasRow,
    FunnelMergeRow,
    FunnelOrderRow,
    FunnelSourceRow,
    FunnelStepRow,
    kit,
)

_STEPS = FunnelStepRow
# (period start, or None for the whole range; step; unique customers; median seconds from the
# step before, or None)
StepFigure = tuple[datetime | None, str, int, float | None]
_Medians = dict[tuple[datetime | None, str], float | None]

# The start of the period holding `at`, in UTC (weeks start on Monday).
_PG_PERIOD = "date_trunc('{grain}', {col} AT TIME ZONE 'UTC')"
_SQLITE_PERIOD = {
    Granularity.DAY: "date({col})",
    Granularity.WEEK: "date({col}, 'weekday 0', '-6 days')",
    Granularity.MONTH: "strftime('%Y-%m-01', {col})",
}


def _postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _period(session: AsyncSession, grain: Granularity | None, col: str) -> str:
    if grain is None:  # the whole range as one period
        return "'total'"
    if _postgres(session):
        return _PG_PERIOD.format(grain=grain.value, col=col)
    return _SQLITE_PERIOD[grain].format(col=col)


def _seconds_between(session: AsyncSession, later: str, earlier: str) -> str:
    if _postgres(session):
        return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"
    return f"(julianday({later}) - julianday({earlier})) * 86400.0"


def _filters(q: FunnelQuery, alias: str) -> str:
    out = ""
    if q.campaign_id:
        out += f" AND {alias}.campaign_id = :campaign"
    if q.channel_id:
        out += f" AND {alias}.channel_id = :channel"
    return out


def _params(q: FunnelQuery) -> dict[str, Any]:
    return {
        "tenant": q.tenant_id,
        "start": utc(q.start),
        "end": utc(q.end),
        "campaign": q.campaign_id,
        "channel": q.channel_id,
    }


def _query(sql: str) -> TextClause:
    """The statement with its times bound as the columns' type (SQLite compares them as text,
    so they must be written exactly like the stored values)."""
    return text(sql).bindparams(
        bindparam("start", type_=DateTime(timezone=True)),
        bindparam("end", type_=DateTime(timezone=True)),
    )


def period_start(value: object) -> datetime:
    """A period key as the database returns it (timestamp or 'YYYY-MM-DD') as aware UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


class FunnelRepository:
    def __init__(self) -> None:
        self.rollup = FunnelRollup()

    async def settle(self, session: AsyncSession) -> None:
        """Bring the per-day rollup up to the step rows this transaction changed (the end of
        every use case that changes them)."""
        await self.rollup.settle(session)

    # --- who an event is about ---------------------------------------------------------------

    async def lock(self, session: AsyncSession, tenant: str, customer: str) -> None:
        """Serialise the work on one customer id until the transaction ends. The consumers of
        four streams run at once (a replay runs them flat out): without it, a step recorded for
        a customer being merged or forgotten can commit after the merge moved or erased their
        rows, and stay behind. SQLite's transactions are serial already (BEGIN IMMEDIATE)."""
        if _postgres(session):
            await session.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                {"key": f"funnel:{tenant}:{customer}"},
            )

    async def resolve(self, session: AsyncSession, tenant: str, customer: str) -> str | None:
        """The live customer id (following merges), or None when the customer was forgotten.
        Takes the id's lock first, so a merge or erasure in progress is waited for."""
        await self.lock(session, tenant, customer)
        row = await session.get(FunnelAliasRow, (tenant, customer))
        if row is None:
            return customer
        return row.survivor_id or None

    async def alias(self, session: AsyncSession, tenant: str, gone: str, survivor: str) -> None:
        """`gone` now means `survivor` ("" = forgotten), and so does every id that meant `gone`."""
        await session.execute(
            update(FunnelAliasRow)
            .where(FunnelAliasRow.tenant_id == tenant, FunnelAliasRow.survivor_id == gone)
            .values(survivor_id=survivor)
        )
        row = await session.get(FunnelAliasRow, (tenant, gone))
        if row is None:
            session.add(FunnelAliasRow(tenant_id=tenant, customer_id=gone, survivor_id=survivor))
        else:
            row.survivor_id = survivor

    async def unalias(self, session: AsyncSession, tenant: str, restored: str) -> None:
        """`restored` is a customer of its own again (an unmerge)."""
        await session.execute(
            delete(FunnelAliasRow).where(
                FunnelAliasRow.tenant_id == tenant,
                FunnelAliasRow.customer_id == restored,
                FunnelAliasRow.survivor_id != "",
            )
        )

    # --- attribution -------------------------------------------------------------------------

    async def source(
        self, session: AsyncSession, tenant: str, customer: str
    ) -> FunnelSourceRow | None:
        return await session.get(FunnelSourceRow, (tenant, customer))

    async def set_source(
        self,
        session: AsyncSession,
        tenant: str,
        customer: str,
        at: datetime,
        *,
        campaign_id: str,
        channel_id: str,
    ) -> None:
        """Keep the earliest attribution and copy it onto the customer's step and order rows."""
        row = await self.source(session, tenant, customer)
        if row is not None and utc(row.at) <= utc(at):
            return
        if row is None:
            session.add(
                FunnelSourceRow(
                    tenant_id=tenant,
                    customer_id=customer,
                    at=utc(at),
                    campaign_id=campaign_id,
                    channel_id=channel_id,
                )
            )
        else:
            row.at, row.campaign_id, row.channel_id = utc(at), campaign_id, channel_id
        await self.rollup.track(session, tenant, [customer])
        for table in (FunnelStepRow, FunnelOrderRow):
            await session.execute(
                update(table)
                .where(table.tenant_id == tenant, table.customer_id == customer)
                .values(campaign_id=campaign_id, channel_id=channel_id)
            )

    # --- steps and orders --------------------------------------------------------------------

    async def record_step(
        self,
        session: AsyncSession,
        tenant: str,
        customer: str,
        step: str,
        at: datetime,
        *,
        campaign_id: str = "",
        channel_id: str = "",
    ) -> None:
        """The customer's step at `at` unless they reached it earlier (one atomic upsert: two
        consumers may record the same step at once)."""
        await self.rollup.track(session, tenant, [customer])
        values = {
            "tenant_id": tenant,
            "customer_id": customer,
            "step": step,
            "at": utc(at),
            "campaign_id": campaign_id,
            "channel_id": channel_id,
        }
        if _postgres(session):
            pg = postgresql.insert(_STEPS).values(values)
            stmt: Any = pg.on_conflict_do_update(
                index_elements=["tenant_id", "customer_id", "step"],
                set_={"at": text("LEAST(funnel_steps.at, excluded.at)")},
            )
        else:
            lite = sqlite.insert(_STEPS).values(values)
            stmt = lite.on_conflict_do_update(
                index_elements=["tenant_id", "customer_id", "step"],
                set_={"at": text("min(funnel_steps.at, excluded.at)")},
            )
        await session.execute(stmt)

    async def add_order(
        self,
        session: AsyncSession,
        tenant: str,
        customer: str,
        order_id: str,
        paid_at: datetime,
        *,
        campaign_id: str = "",
        channel_id: str = "",
    ) -> None:
        if await session.get(FunnelOrderRow, (tenant, order_id)) is not None:
            return  # the same order paid twice is one order
        session.add(
            FunnelOrderRow(
                tenant_id=tenant,
                order_id=order_id,
                customer_id=customer,
                paid_at=utc(paid_at),
                campaign_id=campaign_id,
                channel_id=channel_id,
            )
        )
        await session.flush()

    async def second_order_at(
        self, session: AsyncSession, tenant: str, customer: str
    ) -> datetime | None:
        found = await session.execute(
            select(FunnelOrderRow.paid_at)
            .where(FunnelOrderRow.tenant_id == tenant, FunnelOrderRow.customer_id == customer)
            .order_by(FunnelOrderRow.paid_at)
            .offset(1)
            .limit(1)
        )
        at = found.scalar_one_or_none()
        return None if at is None else utc(at)

    async def steps_of(
        self, session: AsyncSession, tenant: str, customer: str
    ) -> list[FunnelStepRow]:
        found = await session.execute(
            select(FunnelStepRow)
            .where(FunnelStepRow.tenant_id == tenant, FunnelStepRow.customer_id == customer)
            # The upserts write through Core: rows already in the session may hold old times.
            .execution_options(populate_existing=True)
        )
        return list(found.scalars())

    async def move_orders(
        self, session: AsyncSession, tenant: str, gone: str, survivor: str
    ) -> None:
        await session.execute(
            update(FunnelOrderRow)
            .where(FunnelOrderRow.tenant_id == tenant, FunnelOrderRow.customer_id == gone)
            .values(customer_id=survivor)
        )

    async def order_ids_of(self, session: AsyncSession, tenant: str, customer: str) -> list[str]:
        found = await session.execute(
            select(FunnelOrderRow.order_id).where(
                FunnelOrderRow.tenant_id == tenant, FunnelOrderRow.customer_id == customer
            )
        )
        return sorted(found.scalars())

    async def give_back_orders(
        self, session: AsyncSession, tenant: str, orders: Sequence[str], holder: str, owner: str
    ) -> None:
        """These orders, where `holder` still has them, are `owner`'s again."""
        await session.execute(
            update(FunnelOrderRow)
            .where(
                FunnelOrderRow.tenant_id == tenant,
                FunnelOrderRow.customer_id == holder,
                FunnelOrderRow.order_id.in_(orders),
            )
            .values(customer_id=owner)
        )

    async def delete_step(
        self, session: AsyncSession, tenant: str, customer: str, step: str
    ) -> None:
        await self.rollup.track(session, tenant, [customer])
        await session.execute(
            delete(FunnelStepRow).where(
                FunnelStepRow.tenant_id == tenant,
                FunnelStepRow.customer_id == customer,
                FunnelStepRow.step == step,
            )
        )

    async def set_step_at(
        self, session: AsyncSession, tenant: str, customer: str, step: str, at: datetime
    ) -> None:
        """The step's time as given, later or not (an unmerge restoring a survivor's own)."""
        await self.rollup.track(session, tenant, [customer])
        await session.execute(
            update(FunnelStepRow)
            .where(
                FunnelStepRow.tenant_id == tenant,
                FunnelStepRow.customer_id == customer,
                FunnelStepRow.step == step,
            )
            .values(at=utc(at))
        )

    async def put_source(
        self,
        session: AsyncSession,
        tenant: str,
        customer: str,
        source: tuple[datetime, str, str] | None,
    ) -> None:
        """Set (or, None, drop) the customer's attribution as given, and copy it onto their
        step and order rows (an unmerge restoring what a merge replaced)."""
        await self.rollup.track(session, tenant, [customer])
        row = await self.source(session, tenant, customer)
        if source is None:
            if row is not None:
                await session.delete(row)
            campaign = channel = ""
        else:
            at, campaign, channel = source
            if row is None:
                row = FunnelSourceRow(tenant_id=tenant, customer_id=customer)
                session.add(row)
            row.at, row.campaign_id, row.channel_id = utc(at), campaign, channel
        await session.flush()
        for table in (FunnelStepRow, FunnelOrderRow):
            await session.execute(
                update(table)
                .where(table.tenant_id == tenant, table.customer_id == customer)
                .values(campaign_id=campaign, channel_id=channel)
            )

    async def save_merge(
        self,
        session: AsyncSession,
        tenant: str,
        merge_id: str,
        *,
        merged: str,
        survivor: str,
        undo: dict[str, Any],
    ) -> None:
        if await session.get(FunnelMergeRow, (tenant, merge_id)) is None:
            session.add(
                FunnelMergeRow(
                    tenant_id=tenant,
                    merge_id=merge_id,
                    merged_id=merged,
                    survivor_id=survivor,
                    undo=undo,
                )
            )

    async def take_merge(
        self, session: AsyncSession, tenant: str, merge_id: str
    ) -> FunnelMergeRow | None:
        """The merge's record, removed (an unmerge uses it once)."""
        row = await session.get(FunnelMergeRow, (tenant, merge_id))
        if row is not None:
            await session.delete(row)
        return row

    async def erase(self, session: AsyncSession, tenant: str, customers: Sequence[str]) -> None:
        """Every funnel row of these customers (steps, orders, attribution)."""
        await self.rollup.track(session, tenant, customers)
        for table in (FunnelStepRow, FunnelOrderRow, FunnelSourceRow):
            await session.execute(
                delete(table).where(table.tenant_id == tenant, table.customer_id.in_(customers))
            )

    async def forget_merges(
        self, session: AsyncSession, tenant: str, customers: Sequence[str]
    ) -> None:
        """The merge records naming these customers (an erasure: nothing is given back)."""
        await session.execute(
            delete(FunnelMergeRow).where(
                FunnelMergeRow.tenant_id == tenant,
                FunnelMergeRow.merged_id.in_(customers) | FunnelMergeRow.survivor_id.in_(customers),
            )
        )

    async def reset(self, session: AsyncSession, consumers: Sequence[str]) -> None:
        """Empty the read model and forget which events its consumers applied (a rebuild)."""
        for table in (
            FunnelStepRow,
            FunnelOrderRow,
            FunnelSourceRow,
            FunnelAliasRow,
            FunnelMergeRow,
        ):
            await session.execute(delete(table))
        await self.rollup.clear(session)
        await session.execute(delete(kit.inbox).where(kit.inbox.c.consumer.in_(consumers)))

    # --- the figures -------------------------------------------------------------------------

    async def refresh_gaps(self, session: AsyncSession, tenant: str, customer: str) -> None:
        """Recompute gap_s on the customer's rows (at most eight) after their steps changed."""
        await self.rollup.track(session, tenant, [customer])
        rows = {row.step: row for row in await self.steps_of(session, tenant, customer)}
        for earlier, later in MEDIAN_PAIRS:
            row, before = rows.get(later.value), rows.get(earlier.value)
            gap = None
            if row is not None and before is not None and utc(before.at) <= utc(row.at):
                gap = (utc(row.at) - utc(before.at)).total_seconds()
            if row is not None and row.gap_s != gap:
                row.gap_s = gap

    async def step_figures(self, session: AsyncSession, q: FunnelQuery) -> list[StepFigure]:
        """(period start, or None for the whole range; step; unique customers; median gap_s).

        The range's whole UTC days come from the per-day rollup (funnel_daily and the gap
        histograms of funnel_gap_buckets), its partial edge days from funnel_steps; periods
        (UTC days, Monday weeks, months) are whole days, so the counts are exact. A query by
        campaign and channel together reads funnel_steps alone (the rollup keeps each apart)."""
        window = _window(session, q)
        counts = [
            (period_start(p), step, int(n))
            for p, step, n in await session.execute(*window.statement(_COUNTS, _EDGE_COUNTS))
        ]
        medians = _medians(await session.execute(*window.medians()))
        totals: dict[str, int] = {}
        for _, step, n in counts:
            totals[step] = totals.get(step, 0) + n
        figures: list[StepFigure] = [(p, step, n, medians.get((p, step))) for p, step, n in counts]
        figures += [(None, step, n, medians.get((None, step))) for step, n in totals.items()]
        return figures

    async def tenant_step_counts(
        self, session: AsyncSession, start: datetime, end: datetime, max_tenants: int
    ) -> tuple[list[tuple[str, str, int]], int]:
        """(tenant, step, unique customers who reached it in [start, end)) for the `max_tenants`
        tenants with the most steps in the range (ties by id), and how many tenants had steps in
        the range at all. Two GROUP BYs over funnel_steps' (tenant_id, at, ...) index."""
        counts = (
            "WITH busiest AS ("
            " SELECT tenant_id FROM funnel_steps WHERE at >= :start AND at < :end"
            " GROUP BY tenant_id ORDER BY count(*) DESC, tenant_id LIMIT :limit)"
            " SELECT s.tenant_id, s.step, count(*) FROM funnel_steps s"
            " JOIN busiest b ON b.tenant_id = s.tenant_id"
            " WHERE s.at >= :start AND s.at < :end GROUP BY s.tenant_id, s.step"
        )
        times = {"start": utc(start), "end": utc(end)}
        rows = await session.execute(_query(counts), {**times, "limit": max_tenants})
        found = [(tenant, step, int(n)) for tenant, step, n in rows]
        tenants = (
            "SELECT count(DISTINCT tenant_id) FROM funnel_steps WHERE at >= :start AND at < :end"
        )
        total = int((await session.execute(_query(tenants), times)).scalar_one())
        return found, total

    async def order_counts(
        self, session: AsyncSession, q: FunnelQuery
    ) -> list[tuple[datetime, int]]:
        period = _period(session, q.granularity, "o.paid_at")
        sql = (
            f"SELECT {period} AS period, count(*) FROM funnel_orders o "
            "WHERE o.tenant_id = :tenant AND o.paid_at >= :start AND o.paid_at < :end"
            f"{_filters(q, 'o')} GROUP BY 1"
        )
        rows = await session.execute(_query(sql), _params(q))
        return [(period_start(p), int(n)) for p, n in rows]

    async def cohort_counts(
        self, session: AsyncSession, q: FunnelQuery
    ) -> list[tuple[datetime, str, int]]:
        """(first-exposure week, step, customers of that cohort who reached it), and the
        cohort's paid orders as the step "paid_orders"."""
        week = _period(session, Granularity.WEEK, "e.at")
        cohort = (
            "FROM funnel_steps e JOIN {table} x ON x.tenant_id = e.tenant_id "
            "AND x.customer_id = e.customer_id "
            "WHERE e.tenant_id = :tenant AND e.step = 'exposed' AND e.at >= :start "
            f"AND e.at < :end{_filters(q, 'e')} "
        )
        steps = (
            f"SELECT {week}, x.step, count(*) "
            + cohort.format(table="funnel_steps")
            + "GROUP BY 1, 2"
        )
        orders = (
            f"SELECT {week}, 'paid_orders', count(*) "
            + cohort.format(table="funnel_orders")
            + "GROUP BY 1"
        )
        out: list[tuple[datetime, str, int]] = []
        for sql in (steps, orders):
            rows = await session.execute(_query(sql), _params(q))
            out += [(period_start(p), step, int(n)) for p, step, n in rows]
        return out


# Whole days of the range, from the rollup; the partial edge days, from funnel_steps.
_COUNTS = (
    "SELECT {period} AS period, r.step AS step, r.customers AS n FROM funnel_daily r "
    "WHERE r.tenant_id = :tenant AND r.dim = :dim AND r.dim_id = :dim_id "
    "AND r.day >= :d0 AND r.day < :d1"
)
_EDGE_COUNTS = (
    "SELECT {period} AS period, s.step AS step, count(*) AS n FROM funnel_steps s "
    "WHERE s.tenant_id = :tenant AND s.at >= :{lo} AND s.at < :{hi}{filters} GROUP BY 1, 2"
)
_GAPS = (
    "SELECT {period} AS period, r.step AS step, r.bucket AS bucket, r.n AS n, r.sum_s AS sum_s "
    "FROM funnel_gap_buckets r WHERE r.tenant_id = :tenant AND r.dim = :dim "
    "AND r.dim_id = :dim_id AND r.day >= :d0 AND r.day < :d1"
)
_EDGE_GAPS = (
    "SELECT {period} AS period, s.step AS step, (SELECT b.bucket FROM funnel_gap_bounds b "
    "WHERE b.lo_ms <= s.gap_s * 1000.0 ORDER BY b.lo_ms DESC LIMIT 1) AS bucket, 1 AS n, "
    "s.gap_s AS sum_s FROM funnel_steps s WHERE s.tenant_id = :tenant AND s.at >= :{lo} "
    "AND s.at < :{hi} AND s.gap_s IS NOT NULL{filters}"
)
# Per period and for the whole range (NULL), each step's histogram summed; then the bucket(s)
# holding the middle value(s): positions (total - 1) / 2 and total / 2, counted from 0.
_MEDIANS = """
WITH h AS ({parts}),
p AS (
    SELECT period, step, bucket, sum(n) AS n, sum(sum_s) AS sum_s FROM h
    GROUP BY period, step, bucket
),
g AS (
    SELECT period, step, bucket, n, sum_s FROM p
    UNION ALL
    SELECT NULL, step, bucket, sum(n), sum(sum_s) FROM p GROUP BY step, bucket
),
c AS (
    SELECT period, step, bucket, n, sum_s,
        CAST(sum(n) OVER (PARTITION BY period, step ORDER BY bucket) AS BIGINT) AS cum,
        CAST(sum(n) OVER (PARTITION BY period, step) AS BIGINT) AS total
    FROM g WHERE n > 0
)
SELECT period, step, n, sum_s, cum - n AS before, total FROM c
WHERE cum - n <= total / 2 AND cum > (total - 1) / 2
"""


@dataclass(frozen=True)
class _Window:
    """Where each part of a query's range is read from."""

    session: AsyncSession
    q: FunnelQuery
    dim: str | None  # the rollup's dimension, None: funnel_steps only
    days: tuple[date, date] | None  # [first, last) whole days read from the rollup
    edges: tuple[tuple[datetime, datetime], ...]  # [from, to) read from funnel_steps

    def _sql(self, rollup: str, edge: str) -> tuple[list[str], dict[str, Any], list[Any]]:
        session, grain = self.session, self.q.granularity
        parts: list[str] = []
        params = _params(self.q)
        binds: list[Any] = []
        if self.days is not None:
            parts.append(rollup.format(period=_day_period(session, grain, "r.day")))
            params.update(d0=self.days[0], d1=self.days[1], dim=self.dim, dim_id=self._dim_id())
            binds += [bindparam("d0", type_=Date()), bindparam("d1", type_=Date())]
        for k, (lo, hi) in enumerate(self.edges):
            names = {"lo": f"e{k}_from", "hi": f"e{k}_to"}
            parts.append(
                edge.format(
                    period=_period(session, grain, "s.at"), filters=_filters(self.q, "s"), **names
                )
            )
            params.update({names["lo"]: lo, names["hi"]: hi})
            binds += [bindparam(n, type_=DateTime(timezone=True)) for n in names.values()]
        return parts, params, binds

    def _dim_id(self) -> str:
        return self.q.campaign_id if self.dim == "campaign" else self.q.channel_id

    def statement(self, rollup: str, edge: str) -> tuple[TextClause, dict[str, Any]]:
        parts, params, binds = self._sql(rollup, edge)
        union = " UNION ALL ".join(parts)
        # A day whose customers all moved away (a merge, an erasure) keeps a row of 0.
        sql = (
            f"SELECT period, step, sum(n) FROM ({union}) x GROUP BY period, step HAVING sum(n) <> 0"
        )
        return text(sql).bindparams(*binds), params

    def medians(self) -> tuple[TextClause, dict[str, Any]]:
        parts, params, binds = self._sql(_GAPS, _EDGE_GAPS)
        sql = _MEDIANS.format(parts=" UNION ALL ".join(parts))
        return text(sql).bindparams(*binds), params


def _window(session: AsyncSession, q: FunnelQuery) -> _Window:
    start, end = utc(q.start), utc(q.end)
    dim = (
        None
        if q.campaign_id and q.channel_id
        else "campaign"
        if q.campaign_id
        else "channel"
        if q.channel_id
        else "all"
    )
    first = start.date() if start == day_start(start.date()) else start.date() + timedelta(days=1)
    last = end.date()
    if dim is None or first >= last:
        return _Window(session, q, dim, None, ((start, end),))
    edges = tuple(
        (lo, hi) for lo, hi in ((start, day_start(first)), (day_start(last), end)) if lo < hi
    )
    return _Window(session, q, dim, (first, last), edges)


def _day_period(session: AsyncSession, grain: Granularity | None, col: str) -> str:
    """The period holding a rollup day (a DATE), as `_period` gives it for a time."""
    if grain is None:
        return "'total'"
    if _postgres(session):
        return f"date_trunc('{grain.value}', CAST({col} AS timestamp))"
    return _SQLITE_PERIOD[grain].format(col=col)


def _medians(rows: Any) -> _Medians:
    """Each (period, step)'s median from the bucket(s) holding its middle value(s): a bucket's
    values are taken as their mean (exact when they are one value, else within the bucket's
    2 %); two middle values are averaged, as percentile_cont does."""
    found: dict[tuple[datetime | None, str], list[tuple[int, int, float, int]]] = {}
    for p, step, n, sum_s, before, total in rows:
        key = (None if p is None else period_start(p), step)
        found.setdefault(key, []).append((int(before), int(n), float(sum_s), int(total)))
    out: _Medians = {}
    for key, buckets in found.items():
        total = buckets[0][3]

        def at(position: int, buckets: list[tuple[int, int, float, int]] = buckets) -> float:
            for before, n, sum_s, _ in buckets:
                if before <= position < before + n:
                    return sum_s / n
            before, n, sum_s, _ = buckets[-1]  # not reached: the query returns the middle bucket
            return sum_s / n

        out[key] = _seconds((at((total - 1) // 2) + at(total // 2)) / 2)
    return out


def _seconds(value: object) -> float | None:
    # Milliseconds are plenty, and hide float noise between the two databases.
    return None if value is None else round(float(value), 3)  # type: ignore[arg-type]
