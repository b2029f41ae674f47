"""Every query of the funnel tables (funnel_steps, funnel_orders, funnel_sources,
funnel_aliases). GetFunnel's figures are GROUP BYs over funnel_steps / funnel_orders."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, TextClause, bindparam, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.clock import utc
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
        await session.execute(delete(kit.inbox).where(kit.inbox.c.consumer.in_(consumers)))

    # --- the figures -------------------------------------------------------------------------

    async def refresh_gaps(self, session: AsyncSession, tenant: str, customer: str) -> None:
        """Recompute gap_s on the customer's rows (at most eight) after their steps changed."""
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

        Two scans of the range: the counts (a hash aggregate; the whole range is their sum,
        since a customer has one row per step) and the medians over the rows that have a gap."""
        period = _period(session, q.granularity, "s.at")
        sql = (
            f"SELECT {period} AS period, s.step, count(*) FROM funnel_steps s "
            "WHERE s.tenant_id = :tenant AND s.at >= :start AND s.at < :end"
            f"{_filters(q, 's')} GROUP BY 1, 2"
        )
        counts = [
            (period_start(p), step, int(n))
            for p, step, n in await session.execute(_query(sql), _params(q))
        ]
        if _postgres(session):
            medians = await self._medians_pg(session, q)
        else:
            medians = await self._medians_sqlite(session, q, q.granularity)
            medians.update(await self._medians_sqlite(session, q, None))
        totals: dict[str, int] = {}
        for _, step, n in counts:
            totals[step] = totals.get(step, 0) + n
        figures: list[StepFigure] = [(p, step, n, medians.get((p, step))) for p, step, n in counts]
        figures += [(None, step, n, medians.get((None, step))) for step, n in totals.items()]
        return figures

    async def _medians_pg(self, session: AsyncSession, q: FunnelQuery) -> _Medians:
        """percentile_cont per period and for the whole range (GROUPING SETS: one scan)."""
        period = _period(session, q.granularity, "s.at")
        sql = (
            f"SELECT {period} AS period, s.step, "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY s.gap_s) FROM funnel_steps s "
            "WHERE s.tenant_id = :tenant AND s.at >= :start AND s.at < :end "
            f"AND s.gap_s IS NOT NULL{_filters(q, 's')} "
            f"GROUP BY GROUPING SETS (({period}, s.step), (s.step))"
        )
        # The sort behind the medians spills to disk at the default 4 MB on a large range (still
        # at 32 MB for 1M customers' 90 days: ~420,000 rows with a gap take ~40 MB in memory);
        # this transaction only reads, so give it room to sort in memory.
        await session.execute(text("SET LOCAL work_mem = '64MB'"))
        # Passing ~400,000 sorted rows from parallel workers looks dearer to the planner than it
        # is (parallel_tuple_cost 0.1 a row): cheaper, it sorts in the workers (Gather Merge),
        # as the count(*) it is measured against scans in them (bench/funnel.py: 1.2 -> 0.7 s).
        await session.execute(text("SET LOCAL parallel_tuple_cost = 0.01"))
        rows = await session.execute(_query(sql), _params(q))
        return {(None if p is None else period_start(p), step): _seconds(m) for p, step, m in rows}

    async def _medians_sqlite(
        self, session: AsyncSession, q: FunnelQuery, grain: Granularity | None
    ) -> _Medians:
        """SQLite has no percentile_cont: the middle row (or the mean of the two) by row_number."""
        period = _period(session, grain, "s.at")
        sql = f"""
            WITH r AS (
                SELECT {period} AS period, s.step, s.gap_s,
                       row_number() OVER (PARTITION BY {period}, s.step ORDER BY s.gap_s) AS k,
                       count(*) OVER (PARTITION BY {period}, s.step) AS c
                FROM funnel_steps s
                WHERE s.tenant_id = :tenant AND s.at >= :start AND s.at < :end
                    AND s.gap_s IS NOT NULL{_filters(q, "s")}
            )
            SELECT period, step, avg(gap_s) FROM r
            WHERE k IN ((c + 1) / 2, (c + 2) / 2) GROUP BY period, step
        """
        rows = await session.execute(_query(sql), _params(q))
        return {(period_start(p) if grain else None, step): _seconds(m) for p, step, m in rows}

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


def _seconds(value: object) -> float | None:
    # Milliseconds are plenty, and hide float noise between the two databases.
    return None if value is None else round(float(value), 3)  # type: ignore[arg-type]
