"""Customer value: RFM quintiles within the tenant and the top 20% by revenue, in bulk SQL.

The scores live in `customer_value`, a narrow table of buyers only (see models.py). A rescore
is three statements whatever the tenant's size:

1. the quintile cut-offs, computed once: on PostgreSQL one `percentile_disc` aggregate (a sort of
   one column per dimension, not of whole rows); on SQLite, which has no `percentile_disc`, the
   same values read with `ORDER BY … LIMIT 1 OFFSET k` at the same positions;
2. the scores of every buyer from those cut-offs, written only where they changed (an
   `INSERT … SELECT … ON CONFLICT DO UPDATE` of the rows whose scores differ from the table);
3. the scores of customers who are no longer buyers (every order refunded) deleted.

Ties: a score depends only on the value, never on the customer id, so equal values always get
the same score (docs/services/retention.md, "Customer value").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    delete,
    exists,
    func,
    not_,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager

from closedloop_retention.models import ActivityRow, CustomerValueRow

_A = ActivityRow
_V = CustomerValueRow

# The quintile boundaries: a value's score is 1 + the number of cut-offs it is above.
QUINTILES = (0.2, 0.4, 0.6, 0.8)
# The top customers: the top 20% by revenue (ties at the boundary included).
TOP_SHARE = 0.2


@dataclass(frozen=True)
class CutOffs:
    """The values at the 20/40/60/80 % positions of each dimension (ascending), and the revenue
    of the buyer at position ceil(20 % of n) from the top."""

    recency: tuple[datetime, ...]
    frequency: tuple[int, ...]
    monetary: tuple[int, ...]
    top_revenue: int


def position(share: float, n: int) -> int:
    """The 1-based position `percentile_disc(share)` picks among n sorted values (PostgreSQL:
    ceil(share · n), at least 1)."""
    return max(1, math.ceil(share * n))


def _buyers(tenant: str) -> ColumnElement[bool]:
    return and_(_A.tenant_id == tenant, _A.order_count > 0, _A.last_order_at.is_not(None))


async def cut_offs(session: AsyncSession, tenant: str) -> CutOffs | None:
    """The tenant's cut-offs; None without buyers."""
    if session.get_bind().dialect.name == "postgresql":
        return await _cut_offs_postgresql(session, tenant)
    return await _cut_offs_ordered(session, tenant)


async def _cut_offs_postgresql(session: AsyncSession, tenant: str) -> CutOffs | None:
    shares = postgresql.array(QUINTILES)

    def disc(column: Any, *, desc: bool = False) -> Any:
        order = column.desc() if desc else column
        if desc:
            return func.percentile_disc(TOP_SHARE).within_group(order)
        return func.percentile_disc(shares).within_group(order)

    row = (
        await session.execute(
            select(
                disc(_A.last_order_at),
                disc(_A.order_count),
                disc(_A.revenue_minor),
                disc(_A.revenue_minor, desc=True),
            ).where(_buyers(tenant))
        )
    ).one()
    if row[0] is None:
        return None
    return CutOffs(tuple(row[0]), tuple(row[1]), tuple(row[2]), int(row[3]))


async def _cut_offs_ordered(session: AsyncSession, tenant: str) -> CutOffs | None:
    """The same values as `percentile_disc`: the value at each position of one sorted column
    (one statement of scalar subqueries, each an ordered `LIMIT 1 OFFSET k`)."""
    n = int(await session.scalar(select(func.count()).select_from(_A).where(_buyers(tenant))) or 0)
    if n == 0:
        return None

    def at(column: Any, pos: int) -> Any:
        return (
            select(column)
            .where(_buyers(tenant))
            .order_by(column)
            .limit(1)
            .offset(pos - 1)
            .scalar_subquery()
        )

    columns = [_A.last_order_at, _A.order_count, _A.revenue_minor]
    picks = [at(c, position(q, n)) for c in columns for q in QUINTILES]
    picks.append(at(_A.revenue_minor.desc(), position(TOP_SHARE, n)))
    row = (await session.execute(select(*picks))).one()
    k = len(QUINTILES)
    return CutOffs(
        tuple(row[0:k]),
        tuple(int(v) for v in row[k : 2 * k]),
        tuple(int(v) for v in row[2 * k : 3 * k]),
        int(row[3 * k]),
    )


def _score(column: Any, cuts: tuple[Any, ...]) -> Any:
    """1..5: one more than the number of cut-offs the value is above (equal values, equal
    scores)."""
    whens = [(column > cut, i + 2) for i, cut in reversed(list(enumerate(cuts)))]
    return case(*whens, else_=1)


_NAMES = ("tenant_id", "customer_id", "rfm_r", "rfm_f", "rfm_m", "rfm_score", "top_customer")


async def recompute_rfm(session: AsyncSession, tenant: str) -> int:
    """Scores every buyer of the tenant 1..5 on recency, frequency and monetary value (quintiles,
    5 = best) and flags the top 20% by revenue; customers without orders have no scores (read
    as 0). Returns how many customers' scores changed (written or removed)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # The cut-offs' sorts are of one column each: in memory rather than spilled to disk.
        await session.execute(text("SET LOCAL work_mem = '64MB'"))
    cuts = await cut_offs(session, tenant)
    if postgres:
        return await _write_postgresql(session, tenant, cuts)
    return await _write_ordered(session, tenant, cuts)


def _scores(cuts: CutOffs) -> list[Any]:
    r = _score(_A.last_order_at, cuts.recency)
    f = _score(_A.order_count, cuts.frequency)
    m = _score(_A.revenue_minor, cuts.monetary)
    top = case((_A.revenue_minor >= cuts.top_revenue, True), else_=False)
    return [
        _A.tenant_id.label("tenant_id"),
        _A.customer_id.label("customer_id"),
        r.label("rfm_r"),
        f.label("rfm_f"),
        m.label("rfm_m"),
        (r * 100 + f * 10 + m).label("rfm_score"),
        top.label("top_customer"),
    ]


def _differs(stored: Any, scores: Any) -> ColumnElement[bool]:
    return or_(
        stored.c.customer_id.is_(None),
        stored.c.rfm_r != scores["rfm_r"],
        stored.c.rfm_f != scores["rfm_f"],
        stored.c.rfm_m != scores["rfm_m"],
        stored.c.top_customer != scores["top_customer"],
    )


def _upsert(insert: Any, rows: Any) -> Any:
    """SQLite's writer: one connection writes at a time, so an upsert is as cheap as any."""
    stmt = insert(_V).from_select(list(_NAMES), rows)
    return stmt.on_conflict_do_update(
        index_elements=["tenant_id", "customer_id"],
        set_={n: stmt.excluded[n] for n in _NAMES[2:]},
    )


# The two-key advisory lock space of a tenant's rescore (retention's database; the relay's
# claims use 0x0B0C): rescores of one tenant take turns, so the plain INSERT of the new buyers
# below cannot collide with another rescore's.
_RESCORE_SPACE = 0x0F3A
_LOCK = text("SELECT pg_advisory_xact_lock(:space, hashtext(:tenant))")


async def _write_postgresql(session: AsyncSession, tenant: str, cuts: CutOffs | None) -> int:
    """One statement, one scan of the activity rows hash-joined to the narrow table: the buyers
    whose scores differ are updated (HOT: no indexed column changes) or inserted (plain inserts,
    not `ON CONFLICT`, which costs twice as much per row), the scored customers who are no
    buyers any more deleted; returns how many of these."""
    await session.execute(_LOCK, {"space": _RESCORE_SPACE, "tenant": tenant})
    if cuts is None:  # no buyers: every score of the tenant goes
        removed = await session.execute(delete(_V).where(_V.tenant_id == tenant))
        return int(getattr(removed, "rowcount", 0) or 0)
    stored = _V.__table__.alias("v")
    buyer = and_(_A.order_count > 0, _A.last_order_at.is_not(None))
    columns = _scores(cuts)
    had = stored.c.customer_id.is_not(None)
    changes = (
        select(*columns, buyer.label("buyer"), had.label("had"))
        .select_from(
            _A.__table__.outerjoin(
                stored,
                and_(stored.c.tenant_id == _A.tenant_id, stored.c.customer_id == _A.customer_id),
            )
        )
        .where(
            _A.tenant_id == tenant,
            or_(
                and_(buyer, _differs(stored, {c.name: c.element for c in columns})),
                and_(not_(buyer), had),
            ),
        )
        .cte("changes")
    )
    mine = and_(_V.tenant_id == tenant, _V.customer_id == changes.c.customer_id)
    gone = delete(_V).where(mine, changes.c.buyer.is_(False)).returning(_V.customer_id).cte("gone")
    updated = (
        update(_V)
        .where(mine, changes.c.buyer.is_(True), changes.c.had.is_(True))
        .values({n: changes.c[n] for n in _NAMES[2:]})
        .returning(_V.customer_id)
        .cte("updated")
    )
    new = select(*[changes.c[n] for n in _NAMES]).where(
        changes.c.buyer.is_(True), changes.c.had.is_(False)
    )
    inserted = (postgresql.insert(_V).from_select(list(_NAMES), new).returning(_V.customer_id)).cte(
        "inserted"
    )
    total = select(
        sum(
            (select(func.count()).select_from(c).scalar_subquery() for c in (updated, inserted)),
            select(func.count()).select_from(gone).scalar_subquery(),
        )
    )
    return int(await session.scalar(total) or 0)


async def _write_ordered(session: AsyncSession, tenant: str, cuts: CutOffs | None) -> int:
    """SQLite: the scores of customers who are no buyers deleted, then the differing upserted."""
    removed = await session.execute(
        delete(_V)
        .where(
            _V.tenant_id == tenant,
            ~exists(
                select(_A.customer_id).where(_buyers(tenant), _A.customer_id == _V.customer_id)
            ),
        )
        .execution_options(synchronize_session=False)
    )
    changed = int(getattr(removed, "rowcount", 0) or 0)
    if cuts is None:
        return changed
    scores = select(*_scores(cuts)).where(_buyers(tenant)).subquery("s")
    stored = _V.__table__.alias("v")
    differ = (
        select(*[scores.c[n] for n in _NAMES])
        .select_from(
            scores.outerjoin(
                stored,
                and_(
                    stored.c.tenant_id == scores.c.tenant_id,
                    stored.c.customer_id == scores.c.customer_id,
                ),
            )
        )
        .where(_differs(stored, scores.c))
    )
    written = await session.execute(_upsert(sqlite.insert, differ))
    return changed + int(getattr(written, "rowcount", 0) or 0)


async def top_customers(session: AsyncSession, tenant: str, limit: int) -> list[ActivityRow]:
    result = await session.scalars(
        select(_A)
        .join(_A.scores)
        .options(contains_eager(_A.scores))
        .where(_A.tenant_id == tenant, _V.top_customer.is_(True))
        .order_by(_A.revenue_minor.desc(), _A.customer_id)
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    return list(result)
