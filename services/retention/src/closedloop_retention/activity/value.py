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
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    delete,
    func,
    literal,
    not_,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager

from closedloop_retention.models import (
    ActivityRow,
    CustomerValueRow,
    RfmCutOffsRow,
    RfmDepartedRow,
)

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


_COLUMN = {name: column for name, column, _ in _PICKS}


def _rank(share: float, n: int) -> int:
    """The ascending position of a pick (a negative share counts from the top)."""
    return n + 1 - position(-share, n) if share < 0 else position(share, n)


def _buyers_of(tenant: str, *conds: Any) -> Any:
    return select(func.count()).where(_buyers(tenant), *conds).scalar_subquery()


# A start: a value of one input and how many buyers' values are below it and at or below it
# (None: not counted, no ranks wanted).
Start = tuple[Any, int, int | None]


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


async def _settle(
    session: AsyncSession, tenant: str, n: int, starts: dict[str, Start], *, ranked: bool = True
) -> dict[str, Any] | None:
    """The cut-offs of the tenant's n buyers from their starts, and where each sits (`ranks`).

    A cut-off whose position lies among its start's duplicates is the start; else one walk
    along its input's index from the start, down or up, as many entries as the position is
    from the start's run. Then, for each cut-off that moved, where it sits now, counted over the
    entries between the start and it (and its own duplicates). Without a start: from the
    nearer end of the index, and counted from the lowest value. Not `ranked` (starts without
    their at-or-below counts): the walks alone, no ranks. None when a walk fell off the index
    (the starts' counts were not those of the buyers)."""
    values: dict[str, Any] = {}
    ranks: dict[str, list[int]] = {}
    walks: dict[str, Any] = {}
    up: dict[str, bool] = {}  # each walk's direction (SQLite reads naive times: no comparing)
    for name, column, share in _PICKS:
        col = getattr(_V, column)
        pos = _rank(share, n)
        start = starts.get(name)
        if start is None:
            walks[name] = _at(tenant, col, pos, n)
            continue
        c, below, at = start
        if at is None:  # unranked: from the guess's first entry up, or down below it
            walks[name] = _walk(tenant, col, c, pos, below)
        elif below < pos <= at:
            values[name], ranks[name] = c, [below, at]
        elif pos > at:
            up[name] = True
            step = select(col).where(_buyers(tenant), col > c).order_by(col)
            walks[name] = step.offset(pos - at - 1).limit(1).scalar_subquery()
        else:
            up[name] = False
            step = select(col).where(_buyers(tenant), col < c).order_by(col.desc())
            walks[name] = step.offset(below - pos).limit(1).scalar_subquery()
    if not walks:
        return {"buyers": n, **values, "ranks": ranks}
    found = (await session.execute(select(*walks.values()))).one()
    if any(v is None for v in found):
        return None
    if not ranked:
        values.update(zip(walks, found, strict=True))
        return {"buyers": n, **{name: values[name] for name, _, _ in _PICKS}, "ranks": None}
    counts = []
    for name, v in zip(walks, found, strict=True):
        values[name] = v
        col = getattr(_V, _COLUMN[name])
        start = starts.get(name)
        if start is None:
            counts += [_buyers_of(tenant, col < v), _buyers_of(tenant, col == v)]
        elif up[name]:
            counts += [_buyers_of(tenant, col > start[0], col < v), _buyers_of(tenant, col == v)]
        else:
            counts += [_buyers_of(tenant, col > v, col < start[0]), _buyers_of(tenant, col == v)]
    counted = (await session.execute(select(*counts))).one()
    for i, name in enumerate(walks):
        between, same = int(counted[2 * i]), int(counted[2 * i + 1])
        start = starts.get(name)
        if start is None:
            below = between
        elif up[name]:
            assert start[2] is not None  # ranked: every start has its at-or-below count
            below = start[2] + between
        else:
            below = start[1] - between - same
        ranks[name] = [below, below + same]
    return {"buyers": n, **{name: values[name] for name, _, _ in _PICKS}, "ranks": ranks}


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


def _none() -> dict[str, Any]:
    return {"buyers": 0, **{name: None for name, _, _ in _PICKS}, "ranks": {}}


async def cut_offs(
    session: AsyncSession, tenant: str, guesses: dict[str, Any], *, ranked: bool = True
) -> dict[str, Any]:
    """The tenant's cut-off columns (all None without buyers), how many buyers they rank and
    where each sits (`ranks`), counting every buyer.

    Each cut-off starts from a guess (the last rescore's, else a sample's): one aggregate,
    which PostgreSQL runs in parallel, counts the buyers and, per guess, the values below it;
    one statement counts each guess's duplicates along its index; then `_settle` walks each
    cut-off's index from its guess to its exact position (as far as the inputs moved since).
    Without a guess, from the nearer end of the index. Not `ranked` (a first rescore, whose
    ranks are not kept): no duplicates counted, and no ranks."""
    guessed = [
        (name, column, guesses[name]) for name, column, _ in _PICKS if guesses.get(name) is not None
    ]
    counts: list[Any] = [func.count()]
    for _, column, guess in guessed:
        counts.append(func.count().filter(getattr(_V, column) < guess))
    row = (await session.execute(select(*counts).where(_buyers(tenant)))).one()
    n = int(row[0])
    if n == 0:
        return _none()
    same: list[Any] = [None] * len(guessed)
    if ranked and guessed:
        # Each guess's duplicates, from its input's index (a second count per row in the
        # parallel pass cost more: rfm4 measured 26 counts per row against 13).
        dups = [_buyers_of(tenant, getattr(_V, column) == guess) for _, column, guess in guessed]
        same = [int(v) for v in (await session.execute(select(*dups))).one()]
    starts: dict[str, Start] = {
        name: (guess, int(row[1 + i]), None if same[i] is None else int(row[1 + i]) + same[i])
        for i, (name, _, guess) in enumerate(guessed)
    }
    found = await _settle(session, tenant, n, starts, ranked=ranked)
    assert found is not None  # counted from the buyers themselves
    return found


# An incremental rescore gives way to a full one when more than this share of the buyers
# changed since the last, and every FULL_EVERY-th generation (a full count, whatever changed).
# Measured at 1M (bench/README.md, rfm5): 1 % changed, the incremental one took 0.3-0.6 s
# against 0.5-0.7 s for a full one; 3 %, 2.1 s against 0.8 s (reading a changed row and
# walking the index past the moved entries, through pages a vacuum has not seen yet, costs
# more than counting a row in the parallel pass).
FULL_SHARE = 0.02
FULL_EVERY = 64


def _changed(tenant: str, generation: int) -> Any:
    return and_(_V.tenant_id == tenant, _V.held_generation == generation)


async def changes(
    session: AsyncSession, tenant: str, cuts: RfmCutOffsRow
) -> tuple[int, dict[str, tuple[int, int]], int]:
    """What changed since the rescore `cuts` holds, from the changed rows alone: the change in
    the number of buyers, per cut-off the change in the buyers below it and at or below it, and
    the rows read (changed `customer_value` rows and departed buyers). Each changed row counts
    its held inputs (what that rescore ranked, if a buyer then) out and its current ones (if a
    buyer now) in; a departed buyer counts out."""
    gen = cuts.generation
    _D = RfmDepartedRow
    old = select(
        literal(-1).label("sign"),
        literal(0).label("kind"),
        _V.held_last_order_at.label("last_order_at"),
        _V.held_order_count.label("order_count"),
        _V.held_revenue_minor.label("revenue_minor"),
    ).where(_changed(tenant, gen))
    new = select(literal(1), literal(1), _V.last_order_at, _V.order_count, _V.revenue_minor).where(
        _changed(tenant, gen)
    )
    gone = select(
        literal(-1), literal(2), _D.last_order_at, _D.order_count, _D.revenue_minor
    ).where(_D.tenant_id == tenant, _D.generation == gen)
    d = union_all(old, new, gone).subquery()
    counted = and_(d.c.order_count > 0, d.c.last_order_at.is_not(None))

    def signed(*conds: Any) -> Any:
        return func.coalesce(func.sum(case((and_(counted, *conds), d.c.sign), else_=0)), 0)

    aggs: list[Any] = [func.count().filter(d.c.kind != 0), signed()]
    picked = [(name, column, getattr(cuts, name)) for name, column, _ in _PICKS]
    for _, column, c in picked:
        if c is not None:
            aggs += [signed(d.c[column] < c), signed(d.c[column] <= c)]
    row = (await session.execute(select(*aggs).select_from(d))).one()
    deltas: dict[str, tuple[int, int]] = {}
    i = 2
    for name, _, c in picked:
        if c is not None:
            deltas[name] = (int(row[i]), int(row[i + 1]))
            i += 2
    return int(row[1]), deltas, int(row[0])


async def _incremental(
    session: AsyncSession, tenant: str, cuts: RfmCutOffsRow
) -> tuple[dict[str, Any], int] | None:
    """The new cut-offs moved from the last by the changed rows alone (None: rank everyone)."""
    # How many rows changed (up to the cap, from the index) and departed: one statement.
    cap = int(FULL_SHARE * cuts.buyers) + 1
    changed = select(literal(1)).where(_changed(tenant, cuts.generation)).limit(cap).subquery()
    departed = select(func.count()).where(
        RfmDepartedRow.tenant_id == tenant, RfmDepartedRow.generation == cuts.generation
    )
    many, gone = (
        await session.execute(
            select(
                select(func.count()).select_from(changed).scalar_subquery(),
                departed.scalar_subquery(),
            )
        )
    ).one()
    if int(many) + int(gone) >= cap:
        return None
    if many == gone == 0:  # nothing changed: the same cut-offs, nothing more to read
        dn, read = 0, 0
        deltas = {name: (0, 0) for name, _, _ in _PICKS if getattr(cuts, name) is not None}
    else:
        dn, deltas, read = await changes(session, tenant, cuts)
    n = cuts.buyers + dn
    if n <= 0:
        return (_none(), read) if n == 0 else None
    ranks = cuts.ranks or {}
    starts: dict[str, Start] = {}
    for name, (d_below, d_at) in deltas.items():
        if name not in ranks:
            continue
        below, at = ranks[name][0] + d_below, ranks[name][1] + d_at
        if not 0 <= below <= at <= n:
            return None
        starts[name] = (getattr(cuts, name), below, at)
    found = await _settle(session, tenant, n, starts)
    return None if found is None else (found, read)


@dataclass(frozen=True)
class Rescore:
    """What a rescore did: the buyers it ranked, whether it counted every buyer (`full`) or
    moved the last cut-offs by the changed rows, and how many changed rows it read then."""

    buyers: int
    full: bool
    rows_read: int


# The two-key advisory lock space of a tenant's rescore (retention's database; the relay's
# claims use 0x0B0C): rescores of one tenant take turns.
_RESCORE_SPACE = 0x0F3A
_LOCK = text("SELECT pg_advisory_xact_lock(:space, hashtext(:tenant))")


async def rescore(session: AsyncSession, tenant: str, *, full: bool = False) -> Rescore:
    """Ranks every buyer of the tenant 1..5 on recency, frequency and monetary value (quintiles,
    5 = best) and the top 20% by revenue, by writing the tenant's cut-offs (a new generation);
    customers without orders have no scores (read as 0). No customer's row is touched (their
    scores are computed when read).

    Incremental when it can: the rows changed since the last rescore (`held_generation` = its
    generation, their `held_*` inputs what it ranked) and the buyers deleted since
    (`rfm_departed`) move each cut-off's counts (`ranks`), then a short walk along its index
    finds its exact position: nothing changed, no count at all. Counting every buyer
    (`cut_offs`) when asked (`full`), for a first rescore and the one after it (the first one
    ran while orders could still tag rows with no generation), when the last left no `ranks`,
    when more than FULL_SHARE of the buyers changed, and every FULL_EVERY-th generation. Both
    give the same cut-offs.

    Writers of the inputs read the generation under a share lock of the cut-offs row
    (`ActivityRepository.keep_value_inputs`), which this rescore's row lock waits for: every
    change is either counted here or tagged with the new generation, never lost between."""
    postgres = session.get_bind().dialect.name == "postgresql"
    # The row as committed, not as this session may have loaded it before, locked: rescores
    # of the tenant take turns on it (SQLite: its single writer).
    row = await session.get(_C, tenant, populate_existing=True, with_for_update=True)
    if row is None and postgres:
        # No row to lock yet: the first rescores take turns on an advisory lock.
        await session.execute(_LOCK, {"space": _RESCORE_SPACE, "tenant": tenant})
        row = await session.get(_C, tenant, populate_existing=True, with_for_update=True)
    found: tuple[dict[str, Any], int] | None = None
    if (
        not full
        and row is not None
        and row.ranks is not None
        and (row.generation + 1) % FULL_EVERY != 0
    ):
        found = await _incremental(session, tenant, row)
    if found is not None:
        values, read = found
    else:
        if row is not None and row.buyers:
            guesses = {name: getattr(row, name) for name, _, _ in _PICKS}
        elif postgres:
            guesses = await _sampled_guesses(session, tenant)
        else:
            guesses = {}
        # A first rescore keeps no ranks (orders that raced it may be tagged with no
        # generation): the next counts every buyer again, and ranks them.
        values, read = await cut_offs(session, tenant, guesses, ranked=row is not None), 0
    if row is None:
        session.add(_C(tenant_id=tenant, generation=1, **{**values, "ranks": None}))
    else:
        if found is None or read:
            await session.execute(
                delete(RfmDepartedRow).where(
                    RfmDepartedRow.tenant_id == tenant,
                    RfmDepartedRow.generation <= row.generation,
                )
            )
        row.generation += 1
        for name, v in values.items():
            setattr(row, name, v)
    await session.flush()
    return Rescore(int(values["buyers"]), found is None, read)


async def recompute_rfm(session: AsyncSession, tenant: str, *, full: bool = False) -> int:
    """`rescore`; returns how many buyers were ranked."""
    return (await rescore(session, tenant, full=full)).buyers


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
