"""Customer value: RFM quintiles within the tenant and the top 20% by revenue, in bulk SQL.

The inputs and the scores live in `customer_value`, a narrow table with a row per buyer (see
models.py): the last order time, orders and revenue are copied there wherever activity's change
(`ActivityRepository.keep_value_inputs`), so a rescore never reads the wide `activity` table. It
is two statements whatever the tenant's size, each one pass over the tenant's narrow rows:

1. the quintile cut-offs, computed once: on PostgreSQL one `percentile_disc` aggregate (a sort of
   one column per dimension, not of whole rows); on SQLite, which has no `percentile_disc`, the
   same values read with `ORDER BY … LIMIT 1 OFFSET k` at the same positions;
2. the scores of every row from those cut-offs and its own inputs, written only where they
   changed (one `UPDATE … WHERE` the new scores differ); a customer who is no buyer any more
   (every order refunded) scores 0.

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
    func,
    not_,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
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


def _buyer() -> ColumnElement[bool]:
    return and_(_V.order_count > 0, _V.last_order_at.is_not(None))


def _buyers(tenant: str) -> ColumnElement[bool]:
    return and_(_V.tenant_id == tenant, _buyer())


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
                disc(_V.last_order_at),
                disc(_V.order_count),
                disc(_V.revenue_minor),
                disc(_V.revenue_minor, desc=True),
            ).where(_buyers(tenant))
        )
    ).one()
    if row[0] is None:
        return None
    return CutOffs(tuple(row[0]), tuple(row[1]), tuple(row[2]), int(row[3]))


async def _cut_offs_ordered(session: AsyncSession, tenant: str) -> CutOffs | None:
    """The same values as `percentile_disc`: the value at each position of one sorted column
    (one statement of scalar subqueries, each an ordered `LIMIT 1 OFFSET k`)."""
    n = int(await session.scalar(select(func.count()).select_from(_V).where(_buyers(tenant))) or 0)
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

    columns = [_V.last_order_at, _V.order_count, _V.revenue_minor]
    picks = [at(c, position(q, n)) for c in columns for q in QUINTILES]
    picks.append(at(_V.revenue_minor.desc(), position(TOP_SHARE, n)))
    row = (await session.execute(select(*picks))).one()
    k = len(QUINTILES)
    return CutOffs(
        tuple(row[0:k]),
        tuple(int(v) for v in row[k : 2 * k]),
        tuple(int(v) for v in row[2 * k : 3 * k]),
        int(row[3 * k]),
    )


def _score(column: Any, cuts: tuple[Any, ...]) -> Any:
    """1..5 for a buyer: one more than the number of cut-offs the value is above (equal values,
    equal scores); 0 for a customer who is no buyer (any more)."""
    whens = [(column > cut, i + 2) for i, cut in reversed(list(enumerate(cuts)))]
    return case((not_(_buyer()), 0), *whens, else_=1)


def _scores(cuts: CutOffs | None) -> dict[str, Any]:
    """The new scores of a `customer_value` row, from its own inputs."""
    if cuts is None:  # no buyers: nobody is scored
        return {"rfm_r": 0, "rfm_f": 0, "rfm_m": 0, "rfm_score": 0, "top_customer": False}
    r = _score(_V.last_order_at, cuts.recency)
    f = _score(_V.order_count, cuts.frequency)
    m = _score(_V.revenue_minor, cuts.monetary)
    top = case((and_(_buyer(), _V.revenue_minor >= cuts.top_revenue), True), else_=False)
    return {
        "rfm_r": r,
        "rfm_f": f,
        "rfm_m": m,
        "rfm_score": r * 100 + f * 10 + m,
        "top_customer": top,
    }


# The two-key advisory lock space of a tenant's rescore (retention's database; the relay's
# claims use 0x0B0C): rescores of one tenant take turns.
_RESCORE_SPACE = 0x0F3A
_LOCK = text("SELECT pg_advisory_xact_lock(:space, hashtext(:tenant))")


async def recompute_rfm(session: AsyncSession, tenant: str) -> int:
    """Scores every buyer of the tenant 1..5 on recency, frequency and monetary value (quintiles,
    5 = best) and flags the top 20% by revenue; customers without orders have no scores (read
    as 0). Returns how many customers' scores changed (written or zeroed).

    Two passes over the narrow `customer_value` table alone (its inputs are kept there as
    activity's change): the cut-offs, then one UPDATE of the rows whose scores differ (HOT on
    PostgreSQL: no indexed column changes, and at fillfactor 50 every page has room for a new
    version of each of its rows, so even a first run that changes every row inserts no index
    entry)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # The cut-offs' sorts are of one column each: in memory rather than spilled to disk.
        await session.execute(text("SET LOCAL work_mem = '64MB'"))
        await session.execute(_LOCK, {"space": _RESCORE_SPACE, "tenant": tenant})
    cuts = await cut_offs(session, tenant)
    new = _scores(cuts)
    differs = or_(
        *(getattr(_V, name) != new[name] for name in ("rfm_r", "rfm_f", "rfm_m", "top_customer"))
    )
    written = await session.execute(
        update(_V)
        .where(_V.tenant_id == tenant, differs)
        .values(new)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(written, "rowcount", 0) or 0)


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
