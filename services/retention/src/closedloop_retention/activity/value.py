"""Customer value: RFM quintiles within the tenant and the top 20% by revenue, scored on read.

The inputs live in `customer_value`, a narrow table with a row per buyer (see models.py): the
last order time, orders and revenue are copied there wherever activity's change
(`ActivityRepository.keep_value_inputs`), each input with a partial index of the buyers. A
rescore computes the tenant's quintile cut-offs and writes them, one `rfm_cut_offs` row: it
writes no customer's row, so its cost does not grow with how many scores change. Each cut-off
is the value at one position of one input, read from that input's index
(`ORDER BY … LIMIT 1 OFFSET k`, from whichever end is nearer): no sort, no pass over the rows.

The scores are computed where they are read, from the cut-offs and the inputs the last rescore
saw (`CustomerValueRow` in Python, `score_columns` in SQL for the segment compiler and the top
list): an input that changed since is held at its old value (`held_*`, keyed by the cut-offs'
generation), so every answer between two rescores is the one the last rescore gave, as when
the scores were stored. A customer who is no buyer (every order refunded) scores 0.

Ties: a score depends only on the value, never on the customer id, so equal values always get
the same score (docs/services/retention.md, "Customer value").
"""

from __future__ import annotations

import math
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
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager

from closedloop_retention.models import ActivityRow, CustomerValueRow, RfmCutOffsRow

_A = ActivityRow
_V = CustomerValueRow
_C = RfmCutOffsRow

# The quintile boundaries: a value's score is 1 + the number of cut-offs it is above.
QUINTILES = (0.2, 0.4, 0.6, 0.8)
# The top customers: the top 20% by revenue (ties at the boundary included).
TOP_SHARE = 0.2
# The cut-off columns of each input, in QUINTILES order.
_CUT_NAMES = {
    "last_order_at": ("recency_20", "recency_40", "recency_60", "recency_80"),
    "order_count": ("frequency_20", "frequency_40", "frequency_60", "frequency_80"),
    "revenue_minor": ("monetary_20", "monetary_40", "monetary_60", "monetary_80"),
}


def position(share: float, n: int) -> int:
    """The 1-based position `percentile_disc(share)` picks among n sorted values (PostgreSQL:
    ceil(share · n), at least 1)."""
    return max(1, math.ceil(share * n))


def _buyers(tenant: str) -> ColumnElement[bool]:
    # The predicate of the inputs' partial indexes (models.py), so the planner can use them.
    return and_(_V.tenant_id == tenant, _V.order_count > 0, _V.last_order_at.is_not(None))


def _at(tenant: str, column: Any, pos: int, n: int) -> Any:
    """The value at 1-based position `pos` of the tenant's buyers' `column` ascending, read from
    the nearer end of its index."""
    ordered = column if pos - 1 <= n - pos else column.desc()
    offset = pos - 1 if pos - 1 <= n - pos else n - pos
    return (
        select(column)
        .where(_buyers(tenant))
        .order_by(ordered)
        .limit(1)
        .offset(offset)
        .scalar_subquery()
    )


async def cut_offs(session: AsyncSession, tenant: str) -> dict[str, Any]:
    """The tenant's cut-off columns (all None without buyers) and how many buyers they rank."""
    n = int(await session.scalar(select(func.count()).select_from(_V).where(_buyers(tenant))) or 0)
    names = [name for cuts in _CUT_NAMES.values() for name in cuts] + ["top_revenue"]
    if n == 0:
        return {"buyers": 0, **dict.fromkeys(names)}
    picks = [
        _at(tenant, getattr(_V, column), position(q, n), n)
        for column in _CUT_NAMES
        for q in QUINTILES
    ]
    # The revenue at position ceil(20 % of n) from the top.
    picks.append(_at(tenant, _V.revenue_minor, n + 1 - position(TOP_SHARE, n), n))
    row = (await session.execute(select(*picks))).one()
    return {"buyers": n, **dict(zip(names, row, strict=True))}


# The two-key advisory lock space of a tenant's rescore (retention's database; the relay's
# claims use 0x0B0C): rescores of one tenant take turns.
_RESCORE_SPACE = 0x0F3A
_LOCK = text("SELECT pg_advisory_xact_lock(:space, hashtext(:tenant))")


async def recompute_rfm(session: AsyncSession, tenant: str) -> int:
    """Ranks every buyer of the tenant 1..5 on recency, frequency and monetary value (quintiles,
    5 = best) and the top 20% by revenue, by writing the tenant's cut-offs (a new generation);
    customers without orders have no scores (read as 0). Returns how many buyers were ranked.

    Reads 13 values from the inputs' indexes and a count of the buyers, writes one row: the
    customers' rows are not touched (their scores are computed when read)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(_LOCK, {"space": _RESCORE_SPACE, "tenant": tenant})
    values = await cut_offs(session, tenant)
    # Under the lock (SQLite: its single writer), the row as committed, not as this session
    # may have loaded it before.
    row = await session.get(_C, tenant, populate_existing=True, with_for_update=True)
    if row is None:
        session.add(_C(tenant_id=tenant, generation=1, **values))
    else:
        row.generation += 1
        for name, v in values.items():
            setattr(row, name, v)
    await session.flush()
    return int(values["buyers"])


def current_generation(tenant: Any) -> Any:
    """The tenant's rescore generation (0 before the first), as a scalar subquery."""
    return func.coalesce(select(_C.generation).where(_C.tenant_id == tenant).scalar_subquery(), 0)


def score_columns() -> dict[str, ColumnElement[Any]]:
    """The scores of a `customer_value` row joined to its tenant's `rfm_cut_offs` row, in SQL:
    the same rule as `CustomerValueRow`'s properties (models.py)."""
    held = _V.held_generation == _C.generation

    def scored(live: Any, kept: Any, default: Any = None) -> Any:
        value = case((held, kept), else_=live)
        return func.coalesce(value, default) if default is not None else value

    last = scored(_V.last_order_at, _V.held_last_order_at)
    orders = scored(_V.order_count, _V.held_order_count, 0)
    revenue = scored(_V.revenue_minor, _V.held_revenue_minor, 0)
    # No score: no buyer when last ranked, or the tenant had no buyer then.
    unscored = or_(orders <= 0, last.is_(None), _C.recency_20.is_(None))

    def quintile(value: Any, names: tuple[str, ...]) -> Any:
        whens = [(value > getattr(_C, name), i + 2) for i, name in reversed(list(enumerate(names)))]
        return case((unscored, 0), *whens, else_=1)

    r = quintile(last, _CUT_NAMES["last_order_at"])
    f = quintile(orders, _CUT_NAMES["order_count"])
    m = quintile(revenue, _CUT_NAMES["revenue_minor"])
    top = case((and_(not_(unscored), revenue >= _C.top_revenue), True), else_=False)
    return {
        "rfm_r": r,
        "rfm_f": f,
        "rfm_m": m,
        "rfm_score": r * 100 + f * 10 + m,
        "top_customer": top,
    }


async def top_customers(session: AsyncSession, tenant: str, limit: int) -> list[ActivityRow]:
    top = score_columns()["top_customer"]
    result = await session.scalars(
        select(_A)
        .join(_A.scores)
        .join(_V.cuts)
        .options(contains_eager(_A.scores).contains_eager(_V.cuts))
        .where(_A.tenant_id == tenant, top)
        .order_by(_A.revenue_minor.desc(), _A.customer_id)
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    return list(result)
