"""The set-based lifecycle sweep decides exactly what reviewing each customer alone decides:
the same stages, reasons, review moments, churn risk, stage changes and events."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text

from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop_retention.activity.rules import Rules, RulesRepository
from closedloop_retention.activity.service import ActivityService, WinBack
from closedloop_retention.models import ActivityRow, RulesRow, StageChangeRow, kit
from loopkit.db import transact
from loopkit.events import Outbox
from loopkit_dev.testing import RunningService

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
COMPARED = (
    "stage",
    "stage_reason",
    "stage_changed_at",
    "next_review_at",
    "churn_risk",
    "churn_risk_raised_at",
    "win_back_attempts",
    "last_win_back_at",
)


def customers(n: int) -> list[dict[str, Any]]:
    """Varied facts: buyers and not, negative signals, raised risk, lapsed win-back offers."""
    rng = random.Random(12)
    out = []
    for i in range(n):
        orders = rng.choice([0, 1, 2, 3, 8])
        first = NOW - timedelta(days=rng.uniform(1, 400))
        last = min(first + timedelta(days=rng.uniform(0, 300)), NOW) if orders > 1 else first
        offers = rng.choice([0, 0, 1, 3])
        out.append(
            {
                "customer_id": f"{i:026d}",
                "order_count": orders,
                "first_order_at": first if orders else None,
                "last_order_at": last if orders else None,
                "last_seen_at": NOW - timedelta(days=rng.uniform(0, 300)),
                "unsubscribed": rng.random() < 0.2,
                "deleted_rep": rng.random() < 0.2,
                "stage": rng.choice(["investigation", "development", "stable", "decline"]),
                "churn_risk_raised_at": NOW - timedelta(days=3) if rng.random() < 0.3 else None,
                "win_back_attempts": offers,
                "last_win_back_at": NOW - timedelta(days=rng.uniform(1, 60)) if offers else None,
                "next_review_at": NOW - timedelta(minutes=i),
            }
        )
    return out


def row(tenant: str, facts: dict[str, Any]) -> ActivityRow:
    return ActivityRow(
        tenant_id=tenant,
        first_seen_at=NOW - timedelta(days=500),
        revenue_minor=0,
        referrals_made=0,
        consent=False,
        channel_id="",
        channel_kind="",
        owner_rep_id="",
        contact_kind="",
        contact_scope="",
        contact_value="",
        active_hours=[0] * 24,
        stage_reason="",
        churn_risk=0.0,
        **facts,
    )


async def outcome(service: RunningService, tenant: str) -> tuple[object, object, object]:
    async with service.runtime.sessions() as session:
        rows = await session.scalars(
            select(ActivityRow)
            .where(ActivityRow.tenant_id == tenant)
            .order_by(ActivityRow.customer_id)
        )
        state = [(r.customer_id, *(_utc(getattr(r, name)) for name in COMPARED)) for r in rows]
        changes = await session.execute(
            select(
                StageChangeRow.customer_id,
                StageChangeRow.from_stage,
                StageChangeRow.to_stage,
                StageChangeRow.reason,
                StageChangeRow.at,
            )
            .where(StageChangeRow.tenant_id == tenant)
            .order_by(StageChangeRow.customer_id, StageChangeRow.id)
        )
        history = [(*c[:4], _utc(c[4])) for c in changes]
        data = await session.scalars(select(kit.outbox.c.data).order_by(kit.outbox.c.id))
        events = []
        for raw in data:
            env = Envelope.FromString(raw)
            if env.tenant_id == tenant:
                events.append((env.customer_id, env.type, env.payload.value))
    return state, history, sorted(events)


def _utc(value: object) -> object:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


async def test_the_batched_sweep_equals_reviewing_each_customer_alone(
    retention: RunningService,
) -> None:
    batched, alone = f"sweep-{uuid.uuid4().hex[:8]}", f"alone-{uuid.uuid4().hex[:8]}"
    facts = customers(120)
    activity = ActivityService(Outbox(kit, "retention"), RulesRepository())

    async def seed(session: Any) -> None:
        for tenant in (batched, alone):
            session.add_all(row(tenant, dict(f)) for f in facts)

    await transact(retention.runtime.sessions, seed)

    async def sweep(session: Any) -> tuple[int, int]:
        return await activity.sweep(session, batched, NOW, batch=50)  # several batches

    async def one_by_one(session: Any) -> int:
        rows = await session.scalars(select(ActivityRow).where(ActivityRow.tenant_id == alone))
        return sum([await activity.recompute(session, r, NOW) for r in rows])

    examined, changed = await transact(retention.runtime.sessions, sweep)
    assert examined == len(facts)
    assert changed == await transact(retention.runtime.sessions, one_by_one)
    assert changed > 0
    assert await outcome(retention, batched) == await outcome(retention, alone)


# --- the set-based review (PostgreSQL: activity/review_sql.py) against the Python rules --------

US = timedelta(microseconds=1)
# Around every threshold: exactly on it, a microsecond and a second either side.
NUDGES = (timedelta(0), US, -US, timedelta(seconds=1), -timedelta(seconds=1))
RULE_SETS = (
    Rules(),
    Rules(
        expected_cycle_days=7,
        stable_min_orders=3,
        decline_factor=1.25,
        churn_after_days=60,
        churn_risk_threshold=0.55,
        win_back_max_attempts=1,
        win_back_valid_days=3,
    ),
)


def grid(rules: Rules, n: int) -> list[dict[str, Any]]:
    """Facts whose clocks sit on (and a hair around) each moment the rules decide at: overdue,
    churned, the churn risk's threshold with and without the overdue bump, a lapsing or lapsed
    win-back offer, no activity for the churn window; 0, 1, 2, 3 and 8 orders with cycles faster
    and slower than the tenant's, negative signals, raised risk, customers who came back."""
    rng = random.Random(34)
    out = []
    for i in range(n):
        orders = rng.choice([0, 1, 2, 3, 8])
        unsub, deleted = rng.choice([(False, False), (True, False), (False, True), (True, True)])
        own = rng.choice([0.0, 1 / 3, 5.123456789, 20.0, 44.9999, 61.7]) if orders > 1 else 0.0
        cycle = own or float(rules.expected_cycle_days)
        overdue = cycle * rules.decline_factor
        negative = 0.3 * (int(unsub) + int(deleted))
        moments = [overdue, max(float(rules.churn_after_days), overdue * 2)]
        moments += [
            d
            for bump in (0.0, 0.2)
            if (d := (rules.churn_risk_threshold - negative - bump) / 0.6 * overdue * 2) >= 0
        ]
        nudge = rng.choice(NUDGES)
        since = timedelta(days=rng.choice([*moments, rng.uniform(0, 400)])) + nudge
        last = NOW - since
        offers = rng.choice([0, 0, 1, 2, 3])
        lapse = timedelta(days=rules.win_back_valid_days)
        offered = (
            rng.choice([NOW - lapse + rng.choice(NUDGES), NOW - lapse * rng.uniform(0, 3), last])
            if offers
            else None
        )
        seen = NOW - timedelta(days=rules.churn_after_days) + rng.choice(NUDGES)
        out.append(
            {
                "customer_id": f"{i:026d}",
                "order_count": orders,
                "first_order_at": last - timedelta(days=own * (orders - 1)) if orders else None,
                "last_order_at": last if orders else None,
                "last_seen_at": seen if rng.random() < 0.5 else NOW - timedelta(rng.uniform(0, 9)),
                "unsubscribed": unsub,
                "deleted_rep": deleted,
                "stage": rng.choice(["investigation", "development", "stable", "decline"]),
                "churn_risk_raised_at": NOW - timedelta(days=3) if rng.random() < 0.4 else None,
                "win_back_attempts": offers,
                "last_win_back_at": offered,
                "next_review_at": NOW - timedelta(seconds=i),
            }
        )
    return out


async def test_the_set_based_review_decides_what_the_rules_decide_around_every_threshold(
    retention: RunningService,
) -> None:
    """On PostgreSQL the sweep reviews in SQL: the same stages, reasons, review moments (to the
    microsecond), churn risk, stage changes, events and win-back offers as `recompute` per
    customer, for facts on and a hair around each threshold, under two sets of rules."""
    offered: list[tuple[str, str]] = []

    async def playbook(session: Any, tenant: str, row: ActivityRow, *_: Any) -> bool:
        offered.append((tenant.split("-", maxsplit=1)[0], row.customer_id))
        return True

    for rules in RULE_SETS:
        for win_back in (None, playbook):
            offered.clear()
            await _compare_with_recompute(retention, rules, win_back)
            by_tenant = {t: sorted(c for u, c in offered if u == t) for t in ("sweep", "alone")}
            assert by_tenant["sweep"] == by_tenant["alone"]
            assert bool(by_tenant["sweep"]) == (win_back is not None)


async def _compare_with_recompute(
    retention: RunningService, rules: Rules, win_back: WinBack | None
) -> None:
    batched, alone = f"sweep-{uuid.uuid4().hex[:8]}", f"alone-{uuid.uuid4().hex[:8]}"
    facts = grid(rules, 300)
    repo = RulesRepository()
    activity = ActivityService(Outbox(kit, "retention"), repo, win_back=win_back)

    async def seed(session: Any) -> None:
        for tenant in (batched, alone):
            await repo.put(session, tenant, rules)
            session.add_all(row(tenant, dict(f)) for f in facts)

    await transact(retention.runtime.sessions, seed)

    async def sweep(session: Any) -> tuple[int, int]:
        return await activity.sweep(session, batched, NOW, batch=120)  # several batches

    async def one_by_one(session: Any) -> int:
        # `recompute` as the service calls it, but without two round trips a customer that only
        # this loop pays: the rules row, held here, stays in the session's (weak) identity map,
        # so reading the rules per customer needs no query; the rows are flushed once, at the
        # end, instead of before each event's insert (what they decide is the same).
        held = await session.get(RulesRow, alone)
        rows = await session.scalars(select(ActivityRow).where(ActivityRow.tenant_id == alone))
        with session.no_autoflush:
            changed = sum([await activity.recompute(session, r, NOW) for r in rows])
        del held
        return changed

    examined, changed = await transact(retention.runtime.sessions, sweep)
    assert examined == len(facts)
    assert changed == await transact(retention.runtime.sessions, one_by_one)
    assert changed > 0
    assert await outcome(retention, batched) == await outcome(retention, alone)


async def test_a_sweep_of_every_customer_writes_only_what_changed(
    retention: RunningService,
) -> None:
    """Reviewing every customer (as after a rules change) right after a sweep writes no row and
    emits nothing on PostgreSQL; under changed rules it decides what `recompute` decides."""
    tenant, alone = f"every-{uuid.uuid4().hex[:8]}", f"alone-{uuid.uuid4().hex[:8]}"
    facts = customers(150)
    activity = ActivityService(Outbox(kit, "retention"), RulesRepository())

    async def seed(session: Any) -> None:
        for t in (tenant, alone):
            session.add_all(row(t, dict(f)) for f in facts)

    await transact(retention.runtime.sessions, seed)
    await transact(retention.runtime.sessions, lambda s: activity.sweep(s, tenant, NOW))
    await transact(retention.runtime.sessions, lambda s: activity.sweep(s, alone, NOW))
    before = await outcome(retention, tenant)
    later = NOW + timedelta(minutes=1)  # nothing is due a minute on

    async def every(session: Any) -> tuple[int, int]:
        return await activity.sweep(session, tenant, later, every=True)

    if retention.runtime.engine.dialect.name == "postgresql":
        xmins = await _xmins(retention, tenant)
        assert await transact(retention.runtime.sessions, every) == (len(facts), 0)
        assert await _xmins(retention, tenant) == xmins  # not one row rewritten
        assert await outcome(retention, tenant) == before

    # The tenant's expected cycle changes: every customer is reviewed under the new rules.
    async def set_rules(session: Any, t: str) -> None:
        await activity.set_rules(session, t, {"expected_cycle_days": 9}, later)

    await transact(retention.runtime.sessions, lambda s: set_rules(s, tenant))

    async def both_under_new_rules(session: Any) -> None:
        await RulesRepository().put(session, alone, Rules(expected_cycle_days=9))
        for r in await session.scalars(select(ActivityRow).where(ActivityRow.tenant_id == alone)):
            await activity.recompute(session, r, later)

    await transact(retention.runtime.sessions, both_under_new_rules)
    # The background review, a batch per transaction.
    while await transact(
        retention.runtime.sessions, lambda s: activity.review_step(s, tenant, later, batch=60)
    ):
        pass
    decided = ("stage", "stage_changed_at", "next_review_at", "churn_risk_raised_at")
    keep = [0, *(1 + COMPARED.index(name) for name in decided)]
    (mine, changes, events), (theirs, their_changes, their_events) = (
        await outcome(retention, tenant),
        await outcome(retention, alone),
    )
    assert [[r[i] for i in keep] for r in mine] == [[r[i] for i in keep] for r in theirs]  # type: ignore[attr-defined]
    assert changes == their_changes
    assert events == their_events
    assert len(changes) > len(before[1])  # the new rules moved some customers


async def _xmins(service: RunningService, tenant: str) -> list[tuple[str, str]]:
    async with service.runtime.sessions() as session:
        rows = await session.execute(
            text("SELECT customer_id, CAST(xmin AS text) FROM activity WHERE tenant_id = :t"),
            {"t": tenant},
        )
        return sorted((r[0], r[1]) for r in rows)


async def test_a_full_sweep_under_changed_rules_decides_what_recompute_decides(
    retention: RunningService,
) -> None:
    """`sweep(every=True)` under new rules (PostgreSQL: one read-only pass over the tenant, then
    the customers it found changing written in batches) moves the customers `recompute` moves,
    with the same stage changes, events and win-back offers."""
    offered: list[tuple[str, str]] = []

    async def playbook(session: Any, tenant: str, row: ActivityRow, *_: Any) -> bool:
        offered.append((tenant.split("-", maxsplit=1)[0], row.customer_id))
        return True

    for win_back in (None, playbook):
        offered.clear()
        await _full_sweep_against_recompute(retention, win_back)
        by_tenant = {t: sorted(c for u, c in offered if u == t) for t in ("full", "alone")}
        assert by_tenant["full"] == by_tenant["alone"]
        assert bool(by_tenant["full"]) == (win_back is not None)


async def _full_sweep_against_recompute(
    retention: RunningService, win_back: WinBack | None
) -> None:
    tenant, alone = f"full-{uuid.uuid4().hex[:8]}", f"alone-{uuid.uuid4().hex[:8]}"
    facts = customers(150)
    repo = RulesRepository()
    activity = ActivityService(Outbox(kit, "retention"), repo)

    async def seed(session: Any) -> None:
        for t in (tenant, alone):
            session.add_all(row(t, dict(f)) for f in facts)

    await transact(retention.runtime.sessions, seed)
    for t in (tenant, alone):
        await transact(retention.runtime.sessions, lambda s, t=t: activity.sweep(s, t, NOW))
    before = await outcome(retention, tenant)
    later = NOW + timedelta(minutes=1)

    activity.win_back = win_back  # the playbook from here on (the seeding sweeps made none)

    async def full(session: Any) -> tuple[int, int]:
        await repo.put(session, tenant, Rules(expected_cycle_days=9))
        return await activity.sweep(session, tenant, later, every=True, batch=40)

    async def one_by_one(session: Any) -> int:
        await repo.put(session, alone, Rules(expected_cycle_days=9))
        rows = await session.scalars(select(ActivityRow).where(ActivityRow.tenant_id == alone))
        return sum([await activity.recompute(session, r, later) for r in rows])

    examined, changed = await transact(retention.runtime.sessions, full)
    assert examined == len(facts)
    assert changed == await transact(retention.runtime.sessions, one_by_one) > 0
    decided = ("stage", "stage_changed_at", "next_review_at", "churn_risk_raised_at")
    keep = [0, *(1 + COMPARED.index(name) for name in decided)]
    (mine, changes, events), (theirs, their_changes, their_events) = (
        await outcome(retention, tenant),
        await outcome(retention, alone),
    )
    assert [[r[i] for i in keep] for r in mine] == [[r[i] for i in keep] for r in theirs]  # type: ignore[attr-defined]
    assert changes == their_changes and events == their_events
    assert len(changes) > len(before[1])  # type: ignore[arg-type]
