"""Lifecycle stages and churn risk: pure functions of a customer's facts, the rules and a clock."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from closedloop_retention.activity.rules import Rules
from closedloop_retention.clock import days_between

INVESTIGATION = "investigation"
DEVELOPMENT = "development"
STABLE = "stable"
DECLINE = "decline"
CHURNED = "churned"
STAGES = (INVESTIGATION, DEVELOPMENT, STABLE, DECLINE, CHURNED)


@dataclass(frozen=True)
class Facts:
    order_count: int
    first_order_at: datetime | None
    last_order_at: datetime | None
    last_seen_at: datetime
    unsubscribed: bool
    deleted_rep: bool
    win_back_attempts: int = 0
    last_win_back_at: datetime | None = None


def win_back_exhausted(f: Facts, rules: Rules, now: datetime) -> bool:
    """Every allowed win-back offer was made and the last one lapsed without an order."""
    if f.win_back_attempts < rules.win_back_max_attempts or f.last_win_back_at is None:
        return False
    if f.last_order_at is not None and f.last_order_at >= f.last_win_back_at:
        return False
    return now >= f.last_win_back_at + timedelta(days=rules.win_back_valid_days)


def purchase_cycle_days(f: Facts) -> float:
    """The customer's own mean days between orders; 0 with fewer than two orders."""
    if f.order_count < 2 or f.first_order_at is None or f.last_order_at is None:
        return 0.0
    return max(days_between(f.first_order_at, f.last_order_at) / (f.order_count - 1), 0.0)


def _negative(f: Facts) -> str:
    signals = []
    if f.unsubscribed:
        signals.append("unsubscribed from the official account")
    if f.deleted_rep:
        signals.append("deleted the rep")
    return " and ".join(signals)


def assess(f: Facts, rules: Rules, now: datetime) -> tuple[str, str]:
    """(stage, reason) of a customer at `now`."""
    negative = _negative(f)
    if f.order_count <= 0 or f.last_order_at is None:
        idle = days_between(f.last_seen_at, now)
        if idle > rules.churn_after_days:
            return CHURNED, f"no activity for {idle:.0f} days and no order"
        if negative:
            return DECLINE, f"negative signal: {negative}"
        return INVESTIGATION, "known customer, no order yet"
    own = purchase_cycle_days(f)
    cycle = own or float(rules.expected_cycle_days)
    since = days_between(f.last_order_at, now)
    if since > max(float(rules.churn_after_days), cycle * rules.decline_factor * 2):
        return CHURNED, f"no order for {since:.0f} days"
    if win_back_exhausted(f, rules, now):
        return CHURNED, f"{f.win_back_attempts} win-back offers unanswered"
    if negative:
        return DECLINE, f"negative signal: {negative}"
    if since > cycle * rules.decline_factor:
        return DECLINE, f"overdue: {since:.0f} days since the last order vs a {cycle:.0f}-day cycle"
    if f.order_count >= rules.stable_min_orders:
        if own <= rules.expected_cycle_days * rules.decline_factor:
            return STABLE, f"repeat buyer ({f.order_count} orders, every {own:.0f} days)"
        return DEVELOPMENT, f"repeat buyer slower than the {rules.expected_cycle_days}-day cycle"
    return DEVELOPMENT, "first order paid"


def churn_risk(f: Facts, rules: Rules, now: datetime) -> tuple[float, list[str]]:
    """0..1 from recency vs the customer's own cycle and negative signals (buyers only)."""
    if f.order_count <= 0 or f.last_order_at is None:
        return 0.0, []
    cycle = purchase_cycle_days(f) or float(rules.expected_cycle_days)
    since = days_between(f.last_order_at, now)
    reasons: list[str] = []
    score = min(since / (cycle * rules.decline_factor * 2), 1.0) * 0.6
    if since > cycle * rules.decline_factor:
        reasons.append(f"overdue: {since:.0f} days vs a {cycle:.0f}-day cycle")
        score += 0.2
    if f.unsubscribed:
        reasons.append("unsubscribed")
        score += 0.3
    if f.deleted_rep:
        reasons.append("deleted the rep")
        score += 0.3
    return min(score, 1.0), reasons


def next_review(f: Facts, rules: Rules, now: datetime) -> datetime | None:
    """The first moment after `now` at which time alone (no new event) can change the stage or
    raise the churn risk: the sweep only looks at customers whose moment has come."""
    if f.order_count <= 0 or f.last_order_at is None:
        moments = [f.last_seen_at + timedelta(days=rules.churn_after_days)]
    else:
        cycle = purchase_cycle_days(f) or float(rules.expected_cycle_days)
        overdue = cycle * rules.decline_factor
        churn = max(float(rules.churn_after_days), overdue * 2)
        negative = 0.3 * (int(f.unsubscribed) + int(f.deleted_rep))
        # Days since the last order at which the churn risk reaches the threshold.
        risk_days = [
            (rules.churn_risk_threshold - negative - bump) / 0.6 * overdue * 2
            for bump in (0.0, 0.2)
        ]
        days = [overdue, churn, *(d for d in risk_days if d >= 0)]
        moments = [f.last_order_at + timedelta(days=d, seconds=1) for d in days]
        if f.last_win_back_at is not None:
            # The last offer lapses: offer again, or let go.
            moments.append(
                f.last_win_back_at + timedelta(days=rules.win_back_valid_days, seconds=1)
            )
    future = [m for m in moments if m > now]
    return min(future) if future else None


def rounded_risk(score: float) -> float:
    """The churn risk as the row keeps it: 4 decimals, half up from the score's 15 significant
    digits, which is what PostgreSQL's round(float8::numeric, 4) gives (the set-based sweep)."""
    return float(Decimal(f"{score:.15g}").quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def returned(f: Facts) -> Facts:
    """The facts with the win-back count reset when an order came after the last offer."""
    if (
        f.last_win_back_at is not None
        and f.last_order_at is not None
        and f.last_order_at >= f.last_win_back_at
    ):
        return replace(f, win_back_attempts=0, last_win_back_at=None)
    return f


@dataclass(frozen=True)
class Review:
    """What a review of a customer decides: the row's new lifecycle columns and the events."""

    stage: str
    reason: str
    next_review_at: datetime | None
    churn_risk: float  # the exact score; the row keeps it rounded
    risk_reasons: list[str]
    raise_risk: bool  # emit churn_risk.raised and remember when
    clear_risk: bool  # the risk fell below the threshold again
    offer: bool  # a win-back offer is due (if the tenant has a playbook)


def review(f: Facts, risk_raised: bool, rules: Rules, now: datetime) -> Review:
    """The stage, churn risk and next review of a customer (facts after `returned`) at `now`."""
    stage, reason = assess(f, rules, now)
    score, reasons = churn_risk(f, rules, now)
    high = score >= rules.churn_risk_threshold and stage != CHURNED
    offer = raise_risk = clear_risk = False
    if high and not risk_raised:
        raise_risk = offer = True
    elif high and f.last_win_back_at is not None:
        lapsed = f.last_win_back_at + timedelta(days=rules.win_back_valid_days)
        offer = now >= lapsed and f.win_back_attempts < rules.win_back_max_attempts
    elif score < rules.churn_risk_threshold and risk_raised:
        clear_risk = True
    return Review(
        stage=stage,
        reason=reason,
        next_review_at=next_review(f, rules, now),
        churn_risk=score,
        risk_reasons=reasons,
        raise_risk=raise_risk,
        clear_risk=clear_risk,
        offer=offer,
    )
