"""The pure lifecycle rules: the sweep's review moment never misses a time-driven change."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from closedloop_retention.activity import lifecycle
from closedloop_retention.activity.rules import Rules


def test_nothing_changes_before_the_review_moment() -> None:
    rng = random.Random(5)
    now = datetime(2026, 11, 29, tzinfo=UTC)
    rules = Rules()
    for _ in range(2000):
        orders = rng.choice([0, 1, 2, 3, 8])
        first = now - timedelta(days=rng.uniform(0, 400))
        last = first + timedelta(days=rng.uniform(0, 200)) if orders > 1 else first
        f = lifecycle.Facts(
            order_count=orders,
            first_order_at=first if orders else None,
            last_order_at=min(last, now) if orders else None,
            last_seen_at=now - timedelta(days=rng.uniform(0, 300)),
            unsubscribed=rng.random() < 0.2,
            deleted_rep=rng.random() < 0.2,
        )
        stage, _ = lifecycle.assess(f, rules, now)
        risk, _ = lifecycle.churn_risk(f, rules, now)
        raised = risk >= rules.churn_risk_threshold
        review = lifecycle.next_review(f, rules, now)
        horizon = review or now + timedelta(days=3650)
        for step in range(1, 20):
            t = now + (horizon - now) * step / 20 - timedelta(seconds=2)
            if t <= now:
                continue
            assert lifecycle.assess(f, rules, t)[0] == stage, (f, t, review)
            later_risk, _ = lifecycle.churn_risk(f, rules, t)
            assert (later_risk >= rules.churn_risk_threshold) == raised, (f, t, review)


def test_stages_by_orders_and_time() -> None:
    now = datetime(2026, 11, 29, tzinfo=UTC)
    rules = Rules(expected_cycle_days=30)

    def facts(orders: int, first_days: float, last_days: float) -> lifecycle.Facts:
        return lifecycle.Facts(
            order_count=orders,
            first_order_at=now - timedelta(days=first_days) if orders else None,
            last_order_at=now - timedelta(days=last_days) if orders else None,
            last_seen_at=now,
            unsubscribed=False,
            deleted_rep=False,
        )

    assert lifecycle.assess(facts(0, 0, 0), rules, now)[0] == lifecycle.INVESTIGATION
    assert lifecycle.assess(facts(1, 10, 10), rules, now)[0] == lifecycle.DEVELOPMENT
    assert lifecycle.assess(facts(3, 60, 10), rules, now)[0] == lifecycle.STABLE
    # A repeat buyer every 100 days is slower than the tenant's 30-day cycle.
    assert lifecycle.assess(facts(2, 110, 10), rules, now)[0] == lifecycle.DEVELOPMENT
    assert lifecycle.assess(facts(3, 100, 50), rules, now)[0] == lifecycle.DECLINE
    assert lifecycle.assess(facts(3, 400, 300), rules, now)[0] == lifecycle.CHURNED
