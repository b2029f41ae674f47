"""The lifecycle review (lifecycle.review) as one PostgreSQL statement per batch of customers.

The statement reads a keyset batch, computes each customer's stage, reason, churn risk and next
review from the row's facts and the tenant's rules (bound parameters), writes the rows whose
review is due or whose decisions changed, and returns only what Python still has to act on: the
customers whose stage changed or whose churn risk was raised (their stage_changes rows and events
are built by lifecycle.review from the returned facts, so the texts are Python's), the customers
due a win-back offer (the playbook decides per row), and the batch's last key and size.

Exactness: every float is computed with the same IEEE operations in the same order as
lifecycle.py; every time is exact microseconds since 1970 (`_us`), days between two times their
float8 difference divided by 1e6 and 86400.0, like `timedelta.total_seconds() / 86400.0`;
`{x:.0f}` is `round(float8)` (both round half to even on the binary value); `timedelta(days=d)`
is whole days in microseconds plus `rint` of the fraction's microseconds, as CPython rounds it;
the stored churn risk is `rounded_risk`'s rule.
tests/test_sweep_batches.py pins it against the Python rules on a grid around every threshold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from closedloop_retention.activity.rules import Rules

US_PER_DAY = 86_400_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Every time as exact microseconds since 1970 (bigint): date_part's float8 epoch is the int64
# microseconds divided by 1e6, correctly rounded, and for any time within 2^32 s of 1970
# multiplying back and rounding recovers them exactly (the two roundings err by less than half a
# microsecond together). Float8 arithmetic on these is what the rules need, at a fraction of the
# cost of EXTRACT's numeric.
_F = "CAST({} AS float8)"


def _us(ts: str) -> str:
    """`ts` as exact microseconds since 1970 (bigint; NULL stays NULL)."""
    return f"CAST(date_part('epoch', {ts}) * CAST(1e6 AS float8) AS bigint)"


def _days(earlier_us: str, later_us: str) -> str:
    """days_between(earlier, later) as float8, bit for bit: `timedelta.total_seconds()` is the
    microseconds divided by 10**6 correctly rounded, as float8 division of the exact count is."""
    return (
        f"(CAST({later_us} - {earlier_us} AS float8) / CAST(1e6 AS float8)"
        " / CAST(86400.0 AS float8))"
    )


def _plus_days(at_us: str, days: str) -> str:
    """`at + timedelta(days=days, seconds=1)` in microseconds, for a float8 `days` >= 0:
    whole days exactly plus `rint` of the fraction's microseconds, as CPython rounds it."""
    return (
        f"({at_us} + CAST(trunc({days}) AS bigint) * {US_PER_DAY}"
        f" + CAST(round(({days} - trunc({days})) * CAST({US_PER_DAY} AS float8)) AS bigint)"
        " + 1000000)"
    )


def _fmt(x: str) -> str:
    """f"{x:.0f}" for x >= 0."""
    return f"CAST(CAST(round({x}) AS bigint) AS text)"


def timestamp_of(us: str) -> str:
    """Microseconds since 1970 as a timestamptz."""
    return f"(TIMESTAMPTZ '1970-01-01 00:00:00+00' + {us} * interval '1 microsecond')"


_COLUMNS = (
    "customer_id, next_review_at, stage, stage_reason, stage_changed_at, churn_risk_raised_at,"
    " order_count, first_order_at, last_order_at, last_seen_at, unsubscribed, deleted_rep,"
    " win_back_attempts, last_win_back_at, ctid AS row_id"
)

# The batch: `due` the review index's keyset range of due customers, `every` the primary key's
# (every customer is reviewed, as after a rules change; only what changes is written), `ids`
# the customers named (those a full review's read-only pass found changing).
_BATCH = {
    "due": """
        SELECT {columns} FROM activity
        WHERE tenant_id = :tenant AND next_review_at <= :now
          AND (CAST(:after_at AS timestamptz) IS NULL
               OR (next_review_at, customer_id) > (:after_at, :after_id))
        ORDER BY next_review_at, customer_id
        LIMIT :limit
    """,
    "every": """
        SELECT {columns} FROM activity
        WHERE tenant_id = :tenant AND customer_id > :after_id
        ORDER BY customer_id
        LIMIT :limit
    """,
    "ids": """
        SELECT {columns} FROM activity
        WHERE tenant_id = :tenant AND customer_id = ANY(CAST(:ids AS text[]))
          AND customer_id > :after_id
        ORDER BY customer_id
        LIMIT :limit
    """,
}

# The facts after lifecycle.returned (the win-back count resets when an order came after the
# last offer), every time in microseconds.
_RETURNED = f"""
    SELECT
        (last_win_back_at IS NOT NULL AND last_order_at IS NOT NULL
         AND last_order_at >= last_win_back_at) AS came_back,
        (order_count > 0 AND last_order_at IS NOT NULL) AS buyer,
        {_us("first_order_at")} AS fo,
        {_us("last_order_at")} AS lo,
        {_us("last_seen_at")} AS ls,
        {_us("last_win_back_at")} AS wb
    OFFSET 0
"""

_FACTS = f"""
    SELECT
        CASE WHEN came_back THEN 0 ELSE coalesce(win_back_attempts, 0) END AS wba,
        CASE WHEN came_back THEN NULL ELSE last_win_back_at END AS lwb,
        CASE WHEN came_back THEN NULL ELSE wb END AS lwb_us,
        CASE WHEN order_count < 2 OR fo IS NULL OR lo IS NULL
             THEN CAST(0 AS float8)
             ELSE greatest({_days("fo", "lo")} / CAST(order_count - 1 AS float8),
                           CAST(0 AS float8)) END AS own,
        {_days("lo", ":now_us")} AS since,
        {_days("ls", ":now_us")} AS idle,
        concat_ws(' and ',
            CASE WHEN unsubscribed THEN 'unsubscribed from the official account' END,
            CASE WHEN deleted_rep THEN 'deleted the rep' END) AS negative
    OFFSET 0
"""

_CYCLE = """
    SELECT CASE WHEN own = 0 THEN CAST(:expected AS float8) ELSE own END AS cycle
    OFFSET 0
"""

_WINDOWS = """
    SELECT
        cycle * CAST(:factor AS float8) AS overdue,
        greatest(CAST(:churn_days AS float8),
                 cycle * CAST(:factor AS float8) * CAST(2 AS float8)) AS churn,
        (wba >= :wb_max AND lwb_us IS NOT NULL
         AND NOT (lo IS NOT NULL AND lo >= lwb_us)
         AND :now_us >= lwb_us + :wb_us) AS exhausted,
        CAST(0.3 AS float8) * CAST(CAST(unsubscribed AS int) + CAST(deleted_rep AS int)
                                   AS float8) AS neg_risk
    OFFSET 0
"""

# lifecycle.assess (stage and reason, with the reason's LIKE pattern: a reason that differs
# only by the days elapsed is not a change worth a write) and lifecycle.churn_risk.
_ASSESSED = f"""
    SELECT
        CASE
            WHEN NOT buyer THEN
                CASE WHEN idle > CAST(:churn_days AS float8) THEN 'churned'
                     WHEN negative <> '' THEN 'decline'
                     ELSE 'investigation' END
            WHEN since > churn THEN 'churned'
            WHEN exhausted THEN 'churned'
            WHEN negative <> '' THEN 'decline'
            WHEN since > overdue THEN 'decline'
            WHEN order_count >= :stable_min THEN
                CASE WHEN own <= CAST(:expected AS float8) * CAST(:factor AS float8)
                     THEN 'stable' ELSE 'development' END
            ELSE 'development'
        END AS new_stage,
        CASE
            WHEN NOT buyer THEN
                CASE WHEN idle > CAST(:churn_days AS float8)
                     THEN 'no activity for ' || {_fmt("idle")} || ' days and no order'
                     WHEN negative <> '' THEN 'negative signal: ' || negative
                     ELSE 'known customer, no order yet' END
            WHEN since > churn THEN 'no order for ' || {_fmt("since")} || ' days'
            WHEN exhausted THEN wba || ' win-back offers unanswered'
            WHEN negative <> '' THEN 'negative signal: ' || negative
            WHEN since > overdue THEN
                'overdue: ' || {_fmt("since")} || ' days since the last order vs a '
                || {_fmt("cycle")} || '-day cycle'
            WHEN order_count >= :stable_min THEN
                CASE WHEN own <= CAST(:expected AS float8) * CAST(:factor AS float8)
                     THEN 'repeat buyer (' || order_count || ' orders, every '
                          || {_fmt("own")} || ' days)'
                     ELSE 'repeat buyer slower than the ' || CAST(:expected_text AS text)
                          || '-day cycle' END
            ELSE 'first order paid'
        END AS new_reason,
        CASE
            WHEN NOT buyer THEN
                CASE WHEN idle > CAST(:churn_days AS float8)
                     THEN 'no activity for % days and no order' END
            WHEN since > churn THEN 'no order for % days'
            WHEN exhausted OR negative <> '' THEN NULL
            WHEN since > overdue THEN
                'overdue: % days since the last order vs a ' || {_fmt("cycle")} || '-day cycle'
        END AS reason_pattern,
        CASE WHEN NOT buyer THEN CAST(0 AS float8) ELSE least(
            least(since / (cycle * CAST(:factor AS float8) * CAST(2 AS float8)),
                  CAST(1 AS float8)) * CAST(0.6 AS float8)
            + CASE WHEN since > overdue THEN CAST(0.2 AS float8) ELSE 0 END
            + CASE WHEN unsubscribed THEN CAST(0.3 AS float8) ELSE 0 END
            + CASE WHEN deleted_rep THEN CAST(0.3 AS float8) ELSE 0 END,
            CAST(1 AS float8)) END AS score
    OFFSET 0
"""

# lifecycle.next_review: the days after the last order at which the churn risk reaches the
# threshold (without and with the overdue bump), then each moment once (in microseconds).
_RISK_DAYS = """
    SELECT
        (CAST(:threshold AS float8) - neg_risk) / CAST(0.6 AS float8) * overdue
            * CAST(2 AS float8) AS risk0,
        (CAST(:threshold AS float8) - neg_risk - CAST(0.2 AS float8))
            / CAST(0.6 AS float8) * overdue * CAST(2 AS float8) AS risk1
    OFFSET 0
"""

_MOMENTS = f"""
    SELECT
        ls + :churn_us AS m_idle,
        {_plus_days("lo", "overdue")} AS m_overdue,
        {_plus_days("lo", "churn")} AS m_churn,
        CASE WHEN risk0 >= 0 THEN {_plus_days("lo", "risk0")} END AS m_risk0,
        CASE WHEN risk1 >= 0 THEN {_plus_days("lo", "risk1")} END AS m_risk1,
        lwb_us + :wb_us + 1000000 AS m_offer
    OFFSET 0
"""

# The next review (microseconds) and the decisions of lifecycle.review.
_REVIEWED = """
    SELECT
        CASE WHEN NOT buyer THEN CASE WHEN m_idle > :now_us THEN m_idle END
        ELSE least(
            CASE WHEN m_overdue > :now_us THEN m_overdue END,
            CASE WHEN m_churn > :now_us THEN m_churn END,
            CASE WHEN m_risk0 > :now_us THEN m_risk0 END,
            CASE WHEN m_risk1 > :now_us THEN m_risk1 END,
            CASE WHEN m_offer > :now_us THEN m_offer END)
        END AS new_review,
        (score >= CAST(:threshold AS float8) AND new_stage <> 'churned') AS high,
        churn_risk_raised_at IS NOT NULL AS was_raised
    OFFSET 0
"""

_DECIDED = """
    SELECT
        (high AND NOT was_raised) AS raise_risk,
        (score < CAST(:threshold AS float8) AND was_raised) AS clear_risk,
        ((high AND NOT was_raised)
         OR (high AND lwb_us IS NOT NULL AND :now_us >= lwb_us + :wb_us
             AND wba < :wb_max)) AS offer
    OFFSET 0
"""

# Written: a due review always (its moment moves on); in `every` mode also any change of a
# decision (stage, reason but for the days elapsed, next review, risk raised or cleared,
# win-back reset); a customer due an offer is left to `recompute` when there is a playbook.
_CHANGES = f"""
    NOT (e.offer AND :win_back)
      AND (e.next_review_at <= :now
           OR e.new_stage <> e.stage
           OR e.new_review IS DISTINCT FROM {_us("e.next_review_at")}
           OR e.raise_risk OR e.clear_risk OR e.came_back
           OR e.stage_reason IS DISTINCT FROM e.new_reason
              AND (e.reason_pattern IS NULL OR e.stage_reason NOT LIKE e.reason_pattern))
"""
_WRITE = f"SELECT e.* FROM decided e WHERE {_CHANGES}"

# The row is written only if none of the facts the review read changed since (an event's
# transaction committed in between: its own recompute decided on the newer facts).
_GUARDED = (
    "order_count",
    "first_order_at",
    "last_order_at",
    "last_seen_at",
    "unsubscribed",
    "deleted_rep",
    "win_back_attempts",
    "last_win_back_at",
    "stage",
    "churn_risk_raised_at",
    "next_review_at",
)

_UPDATE = (
    f"""
    UPDATE activity AS t SET
        stage = w.new_stage,
        stage_reason = left(w.new_reason, 300),
        stage_changed_at = CASE WHEN w.new_stage <> w.stage THEN :now ELSE w.stage_changed_at END,
        next_review_at = {timestamp_of("w.new_review")},
        churn_risk = CAST(round(CAST(w.score AS numeric), 4) AS float8),
        churn_risk_raised_at = CASE WHEN w.raise_risk THEN :now
                                    WHEN w.clear_risk THEN NULL
                                    ELSE w.churn_risk_raised_at END,
        win_back_attempts = w.wba,
        last_win_back_at = w.lwb
    FROM written w
    WHERE t.ctid = ANY(ARRAY(SELECT row_id FROM written)) AND t.ctid = w.row_id
      AND t.tenant_id = :tenant AND t.customer_id = w.customer_id AND """
    + " AND ".join(f"t.{c} IS NOT DISTINCT FROM w.{c}" for c in _GUARDED)
    + """
    RETURNING w.customer_id, w.new_stage <> w.stage AS stage_changed, w.raise_risk,
        w.stage, w.order_count, w.first_order_at, w.last_order_at, w.last_seen_at,
        w.unsubscribed, w.deleted_rep, w.win_back_attempts, w.last_win_back_at,
        w.churn_risk_raised_at, w.new_stage, w.new_reason, w.score
    """
)


def _statement(mode: str) -> Any:
    # Each stage's values are materialized once per row: inlined, every reference to a value
    # would repeat the expression beneath it.
    def stage(source: str, *levels: str) -> str:
        return f"SELECT * FROM {source}" + "".join(
            f" CROSS JOIN LATERAL ({level}) AS l{i}" for i, level in enumerate(levels)
        )

    sql = (
        f"WITH batch AS ({_BATCH[mode].format(columns=_COLUMNS)}),"
        f" known AS MATERIALIZED ({stage('batch', _RETURNED, _FACTS)}),"
        f" assessed AS MATERIALIZED"
        f" ({stage('known', _CYCLE, _WINDOWS, _ASSESSED, _RISK_DAYS, _MOMENTS)}),"
        f" decided AS ({stage('assessed', _REVIEWED, _DECIDED)}),"
        f" written AS ({_WRITE}), updated AS ({_UPDATE})"
        # What Python acts on: the changes and raised risks, the offers, the batch's end.
        " SELECT 'changed' AS kind, u.*, CAST(NULL AS timestamptz) AS last_at FROM updated u"
        " WHERE u.stage_changed OR u.raise_risk"
        " UNION ALL SELECT 'offer', e.customer_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
        " NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
        " FROM decided e WHERE e.offer AND :win_back"
        " UNION ALL SELECT 'end', max(b.customer_id), NULL, NULL, NULL, count(*), NULL, NULL,"
        " NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM batch b"
        + (
            " UNION ALL SELECT 'end_key', b.customer_id, NULL, NULL, NULL, NULL, NULL, NULL,"
            " NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, b.next_review_at FROM"
            " (SELECT * FROM batch ORDER BY next_review_at DESC, customer_id DESC LIMIT 1) b"
            if mode == "due"
            else ""
        )
    )
    return text(_typed(sql))


def _typed(sql: str) -> str:
    """One type for the clock wherever it is used (date_part alone could not infer it)."""
    sql = re.sub(r":now\b", "CAST(:now AS timestamptz)", sql)
    return re.sub(r":now_us\b", "CAST(:now_us AS bigint)", sql)


STATEMENTS = {mode: _statement(mode) for mode in _BATCH}

# A full review's read-only pass: every customer of the tenant reviewed in one statement (a
# plain SELECT, no keyset batches in index order, no UPDATE), answering how many were read and
# the customers a review would write or offer to; only those are then written ("ids" batches).
SCAN = text(
    _typed(
        f"WITH batch AS (SELECT {_COLUMNS} FROM activity WHERE tenant_id = :tenant),"
        " known AS MATERIALIZED"
        " (SELECT * FROM batch"
        + "".join(
            f" CROSS JOIN LATERAL ({level}) AS l{i}" for i, level in enumerate((_RETURNED, _FACTS))
        )
        + "), assessed AS MATERIALIZED (SELECT * FROM known"
        + "".join(
            f" CROSS JOIN LATERAL ({level}) AS l{i}"
            for i, level in enumerate((_CYCLE, _WINDOWS, _ASSESSED, _RISK_DAYS, _MOMENTS))
        )
        + "), decided AS (SELECT * FROM assessed"
        + "".join(
            f" CROSS JOIN LATERAL ({level}) AS l{i}"
            for i, level in enumerate((_REVIEWED, _DECIDED))
        )
        + ")"
        " SELECT count(*) AS examined, coalesce(array_agg(e.customer_id ORDER BY e.customer_id)"
        f" FILTER (WHERE e.offer AND :win_back OR {_CHANGES}), '{{}}') AS ids FROM decided e"
    )
)


async def changing(
    session: Any, tenant: str, now: datetime, rules: Rules, *, win_back: bool
) -> tuple[int, list[str]]:
    """(customers of the tenant, those a review at `now` would write or offer to)."""
    params = {
        "tenant": tenant,
        "now": now,
        "now_us": microseconds(now),
        "win_back": win_back,
        **rule_parameters(rules),
    }
    row = (await session.execute(SCAN, params)).one()
    return int(row.examined), list(row.ids)


def microseconds(at: datetime) -> int:
    """`at` as microseconds since 1970 (what `_us` computes in SQL)."""
    return (at - EPOCH) // timedelta(microseconds=1)


def rule_parameters(rules: Rules) -> dict[str, Any]:
    return {
        "expected": float(rules.expected_cycle_days),
        "expected_text": str(rules.expected_cycle_days),
        "stable_min": rules.stable_min_orders,
        "factor": float(rules.decline_factor),
        "churn_days": float(rules.churn_after_days),
        "churn_us": rules.churn_after_days * US_PER_DAY,
        "threshold": float(rules.churn_risk_threshold),
        "wb_max": rules.win_back_max_attempts,
        "wb_us": rules.win_back_valid_days * US_PER_DAY,
    }


@dataclass
class Batch:
    """What one statement returned: the rows Python acts on and where the next batch starts."""

    changed: list[Any]
    offers: list[str]
    size: int
    after: tuple[datetime | None, str] | None
    changes: int = 0  # the stage changes, counted by the caller as it writes them


async def review_batch(
    session: Any,
    mode: str,
    tenant: str,
    now: datetime,
    rules: Rules,
    *,
    after: tuple[datetime | None, str] | None,
    limit: int,
    win_back: bool,
    ids: list[str] | None = None,
) -> Batch:
    params = {
        "tenant": tenant,
        "now": now,
        "now_us": microseconds(now),
        "ids": ids,
        "after_at": after[0] if after else None,
        "after_id": after[1] if after else "",
        "limit": limit,
        "win_back": win_back,
        **rule_parameters(rules),
    }
    result = await session.execute(STATEMENTS[mode], params)
    changed: list[Any] = []
    offers: list[str] = []
    size, last_id, end_at, end_id = 0, "", None, ""
    for row in result:
        if row.kind == "changed":
            changed.append(row)
        elif row.kind == "offer":
            offers.append(row.customer_id)
        elif row.kind == "end":
            size, last_id = int(row.order_count or 0), row.customer_id
        else:
            end_at, end_id = row.last_at, row.customer_id
    if not size:
        return Batch(changed, offers, 0, None)
    return Batch(changed, offers, size, (end_at, end_id) if mode == "due" else (None, last_id))
