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
    FunnelOrderRow,
    FunnelSourceRow,
    FunnelStepRow,
    kit,
)

_STEPS = FunnelStepRow

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
            select(FunnelStepRow).where(
                FunnelStepRow.tenant_id == tenant, FunnelStepRow.customer_id == customer
            )
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

    async def erase(self, session: AsyncSession, tenant: str, customers: Sequence[str]) -> None:
        """Every funnel row of these customers (steps, orders, attribution)."""
        for table in (FunnelStepRow, FunnelOrderRow, FunnelSourceRow):
            await session.execute(
                delete(table).where(table.tenant_id == tenant, table.customer_id.in_(customers))
            )

    async def reset(self, session: AsyncSession, consumers: Sequence[str]) -> None:
        """Empty the read model and forget which events its consumers applied (a rebuild)."""
        for table in (FunnelStepRow, FunnelOrderRow, FunnelSourceRow, FunnelAliasRow):
            await session.execute(delete(table))
        await session.execute(delete(kit.inbox).where(kit.inbox.c.consumer.in_(consumers)))

    # --- the figures -------------------------------------------------------------------------

    async def step_counts(
        self, session: AsyncSession, q: FunnelQuery
    ) -> list[tuple[datetime, str, int]]:
        """(period start, step, unique customers) for the range: one GROUP BY."""
        period = _period(session, q.granularity, "s.at")
        sql = (
            f"SELECT {period} AS period, s.step, count(*) FROM funnel_steps s "
            "WHERE s.tenant_id = :tenant AND s.at >= :start AND s.at < :end"
            f"{_filters(q, 's')} GROUP BY 1, 2"
        )
        rows = await session.execute(_query(sql), _params(q))
        return [(period_start(p), step, int(n)) for p, step, n in rows]

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

    async def medians(
        self, session: AsyncSession, q: FunnelQuery, *, per_period: bool
    ) -> list[tuple[datetime | None, str, float]]:
        """(period key, later step, median seconds from the earlier step) over the customers who
        reached the later step in the range, after the earlier one. The median is the middle
        row (or the mean of the two middle rows) by row_number, which both databases have."""
        grain = q.granularity if per_period else None
        pairs = ", ".join(f"('{a.value}', '{b.value}')" for a, b in MEDIAN_PAIRS)
        sql = f"""
            WITH pairs(earlier, later) AS (VALUES {pairs}),
            d AS (
                SELECT {_period(session, grain, "n.at")} AS period, n.step AS later,
                       {_seconds_between(session, "n.at", "b.at")} AS s
                FROM funnel_steps n
                JOIN pairs p ON p.later = n.step
                JOIN funnel_steps b ON b.tenant_id = n.tenant_id
                    AND b.customer_id = n.customer_id AND b.step = p.earlier
                WHERE n.tenant_id = :tenant AND n.at >= :start AND n.at < :end
                    AND b.at <= n.at{_filters(q, "n")}
            ),
            r AS (
                SELECT period, later, s,
                       row_number() OVER (PARTITION BY period, later ORDER BY s) AS k,
                       count(*) OVER (PARTITION BY period, later) AS c
                FROM d
            )
            SELECT period, later, avg(s) FROM r
            WHERE k IN ((c + 1) / 2, (c + 2) / 2) GROUP BY period, later
        """
        rows = await session.execute(_query(sql), _params(q))
        return [
            # Milliseconds: SQLite's julianday arithmetic is off in the microseconds.
            (period_start(p) if per_period else None, later, round(float(s), 3))
            for p, later, s in rows
        ]
