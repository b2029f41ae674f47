"""Customer value: RFM quintiles within the tenant and the top 20% by revenue, scored on read.

The inputs live in `customer_value`, a narrow table with a row per buyer (see models.py): the
last order time, orders and revenue are copied there wherever activity's change
(`ActivityRepository.keep_value_inputs`), each input with a partial index of the buyers. A
rescore computes the tenant's quintile cut-offs and writes them, one `rfm_cut_offs` row: it
writes no customer's row, so its cost does not grow with how many scores change. Each cut-off
is the value at one position of one input, found from a guess (the last cut-off): one parallel
counting pass ranks the guesses, then a short walk along the input's index reaches the exact
position (`cut_offs`): no sort, no write per customer.

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
    Select,
    and_,
    case,
    func,
    not_,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql
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


# Each cut-off: its column, the input it ranks and the share of its position (the top revenue:
# position ceil(20 % of n) from the top).
_PICKS = [
    (name, column, q)
    for column, names in _CUT_NAMES.items()
    for name, q in zip(names, QUINTILES, strict=True)
] + [("top_revenue", "revenue_minor", -TOP_SHARE)]


def _rank(share: float, n: int) -> int:
    """The ascending position of a pick (a negative share counts from the top)."""
    return n + 1 - position(-share, n) if share < 0 else position(share, n)


def _walk(tenant: str, column: Any, guess: Any, pos: int, below: int) -> Any:
    """The value at position `pos` when `below` values are less than `guess`: a walk along the
    index from the guess, down (`pos` ≤ `below`) or up from its first entry, as many entries as
    the position is from the guess's (and up, the guess's own duplicates)."""
    step = select(column).where(_buyers(tenant)).limit(1)
    if pos > below:
        step = step.where(column >= guess).order_by(column).offset(pos - below - 1)
    else:
        step = step.where(column < guess).order_by(column.desc()).offset(below - pos)
    return step.scalar_subquery()


async def _sampled_guesses(session: AsyncSession, tenant: str) -> dict[str, Any]:
    """Guesses for a first rescore on PostgreSQL: the same percentiles of a 1 % sample of the
    table's pages (none for a tenant too small to be in it)."""
    sample = _V.__table__.tablesample(1.0)
    c = sample.c
    shares = postgresql.array(QUINTILES)
    row = (
        await session.execute(
            select(
                *(func.percentile_disc(shares).within_group(c[column]) for column in _CUT_NAMES),
                func.percentile_disc(1 - TOP_SHARE).within_group(c.revenue_minor),
            ).where(c.tenant_id == tenant, c.order_count > 0, c.last_order_at.is_not(None))
        )
    ).one()
    if row[0] is None:
        return {}
    values = [v for arr in row[:3] for v in arr] + [row[3]]
    return {name: v for (name, _, _), v in zip(_PICKS, values, strict=True)}


async def cut_offs(session: AsyncSession, tenant: str, guesses: dict[str, Any]) -> dict[str, Any]:
    """The tenant's cut-off columns (all None without buyers) and how many buyers they rank.

    Each cut-off starts from a guess (the last rescore's, else a sample's): one aggregate,
    which PostgreSQL runs in parallel, counts the buyers and, per guess, the values below it;
    then one statement reads each cut-off at its exact position by a walk along that input's
    index from its guess (as far as the inputs moved since: in a steady state a few entries,
    plus the guess's duplicates when walking up). Without a guess, from the nearer end of the
    index."""
    guessed = [
        (name, column, guesses[name]) for name, column, _ in _PICKS if guesses.get(name) is not None
    ]
    counts: list[Any] = [func.count()]
    counts += [func.count().filter(getattr(_V, column) < guess) for _, column, guess in guessed]
    row = (await session.execute(select(*counts).where(_buyers(tenant)))).one()
    n = int(row[0])
    if n == 0:
        return {"buyers": 0, **{name: None for name, _, _ in _PICKS}}
    below = {name: int(row[1 + i]) for i, (name, _, _) in enumerate(guessed)}
    picks = []
    for name, column, share in _PICKS:
        pos = _rank(share, n)
        if name in below:
            picks.append(_walk(tenant, getattr(_V, column), guesses[name], pos, below[name]))
        else:
            picks.append(_at(tenant, getattr(_V, column), pos, n))
    values = (await session.execute(select(*picks))).one()
    return {"buyers": n, **{name: v for (name, _, _), v in zip(_PICKS, values, strict=True)}}


# The two-key advisory lock space of a tenant's rescore (retention's database; the relay's
# claims use 0x0B0C): rescores of one tenant take turns.
_RESCORE_SPACE = 0x0F3A
_LOCK = text("SELECT pg_advisory_xact_lock(:space, hashtext(:tenant))")


async def recompute_rfm(session: AsyncSession, tenant: str) -> int:
    """Ranks every buyer of the tenant 1..5 on recency, frequency and monetary value (quintiles,
    5 = best) and the top 20% by revenue, by writing the tenant's cut-offs (a new generation);
    customers without orders have no scores (read as 0). Returns how many buyers were ranked.

    Reads the buyers once (a count, in parallel on PostgreSQL) and 13 values from the inputs'
    indexes (`cut_offs`), writes one row: no customer's row is touched (their scores are
    computed when read)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        await session.execute(_LOCK, {"space": _RESCORE_SPACE, "tenant": tenant})
    # Under the lock (SQLite: its single writer), the row as committed, not as this session
    # may have loaded it before.
    row = await session.get(_C, tenant, populate_existing=True, with_for_update=True)
    if row is not None and row.buyers:
        guesses = {name: getattr(row, name) for name, _, _ in _PICKS}
    elif postgres:
        guesses = await _sampled_guesses(session, tenant)
    else:
        guesses = {}
    values = await cut_offs(session, tenant, guesses)
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

    def at(name: str) -> Any:
        return getattr(_C, name)

    held = _V.held_generation == at("generation")

    def scored(live: Any, kept: Any) -> Any:
        return case((held, kept), else_=live)

    last = scored(_V.last_order_at, _V.held_last_order_at)
    orders = func.coalesce(scored(_V.order_count, _V.held_order_count), 0)
    revenue = func.coalesce(scored(_V.revenue_minor, _V.held_revenue_minor), 0)
    # No score: no buyer when last ranked, or the tenant had no buyer then (or no rescore).
    unscored = or_(orders <= 0, last.is_(None), func.coalesce(at("buyers"), 0) == 0)

    def quintile(value: Any, names: tuple[str, ...]) -> Any:
        whens = [(value > at(name), i + 2) for i, name in reversed(list(enumerate(names)))]
        return case((unscored, 0), *whens, else_=1)

    r = quintile(last, _CUT_NAMES["last_order_at"])
    f = quintile(orders, _CUT_NAMES["order_count"])
    m = quintile(revenue, _CUT_NAMES["revenue_minor"])
    top = case((and_(not_(unscored), revenue >= at("top_revenue")), True), else_=False)
    return {
        "rfm_r": r,
        "rfm_f": f,
        "rfm_m": m,
        "rfm_score": r * 100 + f * 10 + m,
        "top_customer": top,
    }


def top_customers_query(tenant: str, limit: int) -> Select[ActivityRow]:
    """The top customers by revenue (ties by id). On PostgreSQL the order is that of the index
    `ix_activity_tenant_revenue`: the plan walks it and stops at the `limit`-th top customer."""
    top = score_columns()["top_customer"]
    return (
        select(_A)
        .join(_A.scores)
        .join(_V.cuts)
        .options(contains_eager(_A.scores).contains_eager(_V.cuts))
        .where(_A.tenant_id == tenant, top)
        .order_by(_A.revenue_minor.desc(), _A.customer_id)
        .limit(limit)
        .execution_options(populate_existing=True)
    )


async def top_customers(session: AsyncSession, tenant: str, limit: int) -> list[ActivityRow]:
    return list(await session.scalars(top_customers_query(tenant, limit)))
