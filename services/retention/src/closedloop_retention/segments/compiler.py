"""Compiles a parsed segment into one SQL condition over the activity table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
)

from closedloop_retention.activity.value import score_columns
from closedloop_retention.clock import utc
from closedloop_retention.models import (
    ActivityRow,
    CustomerValueRow,
    LoyaltyAccountRow,
    RfmCutOffsRow,
    TagRow,
)
from closedloop_retention.segments.language import Condition, Node, Not, TimeValue

_A = ActivityRow


def _column(name: str) -> Any:
    columns: dict[str, Any] = {
        "order_count": _A.order_count,
        "revenue": _A.revenue_minor,
        "referrals_made": _A.referrals_made,
        "churn_risk": _A.churn_risk,
        "first_seen_at": _A.first_seen_at,
        "last_seen_at": _A.last_seen_at,
        "first_order_at": _A.first_order_at,
        "last_order_at": _A.last_order_at,
        "last_interaction_at": _A.last_interaction_at,
        "stage": _A.stage,
        "channel": _A.channel_id,
        "channel_kind": _A.channel_kind,
        "owner_rep": _A.owner_rep_id,
        "unsubscribed": _A.unsubscribed,
        "consent": _A.consent,
        "deleted_rep": _A.deleted_rep,
    }
    if name == "points":
        return func.coalesce(
            select(LoyaltyAccountRow.balance)
            .where(
                LoyaltyAccountRow.tenant_id == _A.tenant_id,
                LoyaltyAccountRow.customer_id == _A.customer_id,
            )
            .scalar_subquery(),
            0,
        )
    if name in _SCORES:
        # Computed from the customer's value row and the tenant's cut-offs, which the query
        # joins (`_source`); no value row or no cut-offs read as 0 / not top.
        return score_columns()[name]
    return columns[name]


# The RFM scores, computed when read (activity/value.py).
_SCORES = frozenset({"rfm_r", "rfm_f", "rfm_m", "rfm_score", "top_customer"})


def _reads_scores(node: Node) -> bool:
    if isinstance(node, Condition):
        return node.field in _SCORES
    if isinstance(node, Not):
        return _reads_scores(node.node)
    return any(_reads_scores(n) for n in node.nodes)


def _source(node: Node) -> Any:
    """What a segment's query reads: the activity rows, and when it reads scores, each one's
    value row and the tenant's cut-offs joined once (a hash join PostgreSQL can run in
    parallel, not a lookup per customer and condition)."""
    if not _reads_scores(node):
        return _A
    value = and_(
        CustomerValueRow.tenant_id == _A.tenant_id,
        CustomerValueRow.customer_id == _A.customer_id,
    )
    return _A.__table__.outerjoin(CustomerValueRow, value).outerjoin(
        RfmCutOffsRow, RfmCutOffsRow.tenant_id == CustomerValueRow.tenant_id
    )


# Fields whose SQL values are whole numbers (columns or the computed scores).
_WHOLE = frozenset({"order_count", "referrals_made", "points", *_SCORES})
# A bound Python int against an INTEGER column is an INTEGER parameter: keep it in range.
_INT4 = 2**31


def _whole(value: float) -> bool:
    return value.is_integer() and -_INT4 < value < _INT4


def _value(cond: Condition, value: object, now: datetime) -> object:
    if isinstance(value, TimeValue):
        return value.at(now)
    if cond.field == "revenue" and isinstance(value, float):
        return round(value * 100)  # yuan in the language, fen in the table
    if cond.field in _WHOLE and isinstance(value, float) and _whole(value):
        # The language's numbers are floats; a whole one compares the same as an integer
        # (every INTEGER is exact in a double), without a cast of the column on every row.
        return int(value)
    return value


def _compare(column: Any, op: str, value: object) -> ColumnElement[bool]:
    if op == "=":
        return column == value  # type: ignore[no-any-return]
    if op == "!=":
        return column != value  # type: ignore[no-any-return]
    if op == "<":
        return column < value  # type: ignore[no-any-return]
    if op == "<=":
        return column <= value  # type: ignore[no-any-return]
    if op == ">":
        return column > value  # type: ignore[no-any-return]
    return column >= value  # type: ignore[no-any-return]


def _condition(cond: Condition, now: datetime) -> ColumnElement[bool]:
    if cond.kind == "tag":
        tags = [str(v) for v in cond.values]
        has = exists(
            select(TagRow.tag).where(
                TagRow.tenant_id == _A.tenant_id,
                TagRow.customer_id == _A.customer_id,
                TagRow.tag.in_(tags),
            )
        )
        return not_(has) if cond.op == "!=" else has
    column = _column(cond.field)
    values = [_value(cond, v, now) for v in cond.values]
    if cond.op == "in":
        return column.in_(values)  # type: ignore[no-any-return]
    return _compare(column, cond.op, values[0])


def compile_node(node: Node, now: datetime) -> ColumnElement[bool]:
    if isinstance(node, Condition):
        return _condition(node, now)
    if isinstance(node, Not):
        return not_(compile_node(node.node, now))
    parts = [compile_node(n, now) for n in node.nodes]
    if node.op == "and":
        return and_(true(), *parts)
    return or_(false(), *parts)


def members(tenant_id: str, node: Node, now: datetime) -> Select[Any]:
    """The customer ids of a segment (one query; used as a subquery by broadcasts)."""
    return (
        select(_A.customer_id)
        .select_from(_source(node))
        .where(_A.tenant_id == tenant_id, compile_node(node, utc(now)))
    )


# With at most this many members per customer sampled, a preview's sample is sorted from the
# matches themselves (found through the segment's filter, as its count found them), not looked
# for along the primary key. The walk reads about customers x sample / members rows, each ~25x
# dearer than a row of the count's scan (1M customers: 8 us against 0.3 us): at 50 x sample
# members the walk of spread members costs about half a count, below it the matches are bounded
# by one count, and members clustered at the end of the key never make it a walk of the tenant.
FEW_PER_SAMPLED = 50


def count_query(tenant_id: str, node: Node, now: datetime) -> Select[Any]:
    """How many customers a segment holds now (the segment index alone where it can)."""
    where = and_(_A.tenant_id == tenant_id, compile_node(node, utc(now)))
    return select(func.count()).select_from(_source(node)).where(where)


def sample_query(
    tenant_id: str, node: Node, now: datetime, sample: int, *, members_counted: int
) -> Select[Any]:
    """The first `sample` members by customer id, for a segment `count_query` counted
    `members_counted` members in (0 members: no sample query at all).

    Many members: walking the primary key in order finds the first ones after a few reads per
    member sampled (about customers x sample / members rows). Few members: that walk reads
    nearly every customer of the tenant before it gives up (a score segment before any rescore:
    23 s at 1M customers), so the matches are first found through the segment's filter as the
    count found them (a MATERIALIZED CTE: the planner cannot turn it back into a walk of the
    primary key) and the few of them sorted (a top-N sort of at most FEW_PER_SAMPLED x sample
    ids)."""
    where = and_(_A.tenant_id == tenant_id, compile_node(node, utc(now)))
    matches = select(_A.customer_id).select_from(_source(node)).where(where)
    if members_counted > FEW_PER_SAMPLED * sample:
        return matches.order_by(_A.customer_id).limit(sample)
    found = matches.cte("members").prefix_with("MATERIALIZED")
    return select(found.c.customer_id).order_by(found.c.customer_id).limit(sample)
