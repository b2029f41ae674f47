"""RFM scores from cut-offs computed once: equal values get equal scores, and PostgreSQL
(`percentile_disc`) and SQLite (ordered `LIMIT 1 OFFSET`) give the same scores for the same data
(both are checked against one reference computed here from sorted values)."""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from closedloop_retention.activity import value
from closedloop_retention.activity.repository import ActivityRepository
from closedloop_retention.activity.rules import RulesRepository
from closedloop_retention.activity.service import ActivityService
from closedloop_retention.models import ActivityRow, RfmCutOffsRow, kit
from closedloop_retention.segments import compiler, language
from loopkit.db import transact
from loopkit.events import Outbox
from loopkit_dev.testing import RunningService

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)


def buyers(n: int, seed: int) -> list[dict[str, Any]]:
    """Facts with many ties: few distinct order counts, repeated revenues and order days."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        orders = rng.choice([1, 1, 1, 2, 2, 3, 5, 8])
        out.append(
            {
                "customer_id": f"{i:026d}",
                "order_count": orders,
                "revenue_minor": rng.choice([990, 1990, 1990, 4990]) * orders,
                "last_order_at": NOW - timedelta(days=rng.randrange(0, 40)),
            }
        )
    return out


def row(tenant: str, f: dict[str, Any]) -> ActivityRow:
    return ActivityRow(
        tenant_id=tenant,
        customer_id=f["customer_id"],
        first_seen_at=NOW - timedelta(days=500),
        last_seen_at=NOW,
        order_count=f["order_count"],
        revenue_minor=f["revenue_minor"],
        first_order_at=f["last_order_at"],
        last_order_at=f["last_order_at"],
        referrals_made=0,
        unsubscribed=False,
        deleted_rep=False,
        consent=False,
        channel_id="",
        channel_kind="",
        owner_rep_id="",
        contact_kind="",
        contact_scope="",
        contact_value="",
        active_hours=[0] * 24,
        stage="stable",
        stage_reason="",
        churn_risk=0.0,
        win_back_attempts=0,
    )


def reference(facts: list[dict[str, Any]]) -> dict[str, tuple[int, int, int, int, bool]]:
    """The documented semantics, from sorted values: the cut-off at share p is the value at
    position ceil(p·n); a score is 1 + the number of cut-offs the value is above; top = revenue at
    least that of the buyer at position ceil(n/5) from the top."""
    n = len(facts)

    def cuts(key: str) -> list[Any]:
        ordered = sorted(f[key] for f in facts)
        return [ordered[max(1, math.ceil(p * n)) - 1] for p in (0.2, 0.4, 0.6, 0.8)]

    def score(v: Any, cs: list[Any]) -> int:
        return 1 + sum(v > c for c in cs)

    r, fr, m = cuts("last_order_at"), cuts("order_count"), cuts("revenue_minor")
    top = sorted((f["revenue_minor"] for f in facts), reverse=True)[max(1, math.ceil(0.2 * n)) - 1]
    out = {}
    for f in facts:
        s = (
            score(f["last_order_at"], r),
            score(f["order_count"], fr),
            score(f["revenue_minor"], m),
        )
        out[f["customer_id"]] = (*s, s[0] * 100 + s[1] * 10 + s[2], f["revenue_minor"] >= top)
    return out


async def scores(
    service: RunningService, tenant: str
) -> dict[str, tuple[int, int, int, int, bool]]:
    async with service.runtime.sessions() as session:
        rows = await session.scalars(select(ActivityRow).where(ActivityRow.tenant_id == tenant))
        return {
            r.customer_id: (r.rfm_r, r.rfm_f, r.rfm_m, r.rfm_score, bool(r.top_customer))
            for r in rows
        }


async def row_versions(service: RunningService, tenant: str) -> dict[str, Any]:
    """Each customer_value row's version (PostgreSQL's xmin; SQLite keeps none: its inputs)."""
    async with service.runtime.sessions() as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        column = "xmin::text" if postgres else "held_generation"
        rows = await session.execute(
            text(f"SELECT customer_id, {column} FROM customer_value WHERE tenant_id = :t"),
            {"t": tenant},
        )
        return {r[0]: r[1] for r in rows}


async def cut_offs(service: RunningService, tenant: str) -> tuple[Any, ...]:
    async with service.runtime.sessions() as session:
        c = await session.get(RfmCutOffsRow, tenant)
        assert c is not None

        def moment(t: datetime) -> datetime:
            return t if t.tzinfo else t.replace(tzinfo=UTC)

        return (
            c.buyers,
            tuple(moment(t) for t in c.recency()),
            c.frequency(),
            c.monetary(),
            c.top_revenue,
        )


async def rescore(service: RunningService, tenant: str) -> int:
    async def work(session: Any) -> int:
        return await value.recompute_rfm(session, tenant)

    return await transact(service.runtime.sessions, work)


async def seed(service: RunningService, tenant: str, facts: list[dict[str, Any]]) -> None:
    """Activity rows, and their RFM inputs copied as the order paths copy them."""

    async def work(session: Any) -> None:
        rows = [row(tenant, dict(f)) for f in facts]
        session.add_all(rows)
        await session.flush()
        for r in rows:
            await ActivityRepository().keep_value_inputs(session, r)

    await transact(service.runtime.sessions, work)


async def test_scores_follow_the_cut_offs_and_ties_score_alike(retention: RunningService) -> None:
    tenant = f"rfm-{uuid.uuid4().hex[:8]}"
    facts = buyers(137, seed=5)  # not a multiple of 5, many ties
    await seed(retention, tenant, facts)

    assert await rescore(retention, tenant) == len(facts)  # buyers ranked
    got = await scores(retention, tenant)
    assert got == reference(facts)
    # Equal values, equal scores (the customer id never breaks a tie).
    by_orders: dict[int, set[int]] = {}
    for f in facts:
        by_orders.setdefault(f["order_count"], set()).add(got[f["customer_id"]][1])
    assert all(len(s) == 1 for s in by_orders.values())
    assert {s[1] for s in got.values()} != {1}  # and the scores still spread

    # Nothing changed: the same scores.
    assert await rescore(retention, tenant) == len(facts)
    assert await scores(retention, tenant) == got

    # A buyer refunded entirely is no buyer: scores gone (0); the others are rescored.
    gone = facts[0]["customer_id"]

    async def refund(session: Any) -> None:
        r = await session.get(ActivityRow, (tenant, gone))
        r.order_count, r.revenue_minor, r.last_order_at, r.first_order_at = 0, 0, None, None
        await session.flush()
        await ActivityRepository().keep_value_inputs(session, r)

    await transact(retention.runtime.sessions, refund)
    assert await rescore(retention, tenant) == len(facts) - 1
    got = await scores(retention, tenant)
    assert got[gone] == (0, 0, 0, 0, False)
    assert {k: v for k, v in got.items() if k != gone} == reference(facts[1:])

    # Segments and the top list read the same scores.
    async def preview(session: Any) -> int:
        node = language.parse("top_customer = true AND rfm_r >= 1")
        result = (await session.execute(compiler.count_query(tenant, node, NOW))).scalar()
        return int(result or 0)

    tops = sum(1 for v in got.values() if v[4])
    assert await transact(retention.runtime.sessions, preview) == tops
    activity = ActivityService(Outbox(kit, "retention"), RulesRepository())

    async def top(session: Any) -> list[str]:
        views = await activity.top_customers(session, tenant, 1000, recompute=False)
        return [v.customer_id for v in views]

    listed = await transact(retention.runtime.sessions, top)
    assert len(listed) == tops
    revenue = {f["customer_id"]: f["revenue_minor"] for f in facts}
    assert [revenue[c] for c in listed] == sorted((revenue[c] for c in listed), reverse=True)


async def test_small_tenants(retention: RunningService) -> None:
    """One buyer scores 1/1/1 and is the top customer; of two, the better scores 3 (above the
    20 % and 40 % cut-offs, which are the lesser value)."""
    one, two = f"rfm1-{uuid.uuid4().hex[:8]}", f"rfm2-{uuid.uuid4().hex[:8]}"
    solo = buyers(1, seed=1)
    pair = [
        {"customer_id": "a" * 26, "order_count": 1, "revenue_minor": 100, "last_order_at": NOW},
        {
            "customer_id": "b" * 26,
            "order_count": 2,
            "revenue_minor": 300,
            "last_order_at": NOW + timedelta(hours=1),
        },
    ]
    await seed(retention, one, solo)
    await seed(retention, two, pair)
    await rescore(retention, one)
    await rescore(retention, two)
    assert await scores(retention, one) == {solo[0]["customer_id"]: (1, 1, 1, 111, True)}
    assert await scores(retention, two) == {
        "a" * 26: (1, 1, 1, 111, False),
        "b" * 26: (3, 3, 3, 333, True),
    }


def _fact(cid: str, orders: int, revenue: int, days_ago: int) -> dict[str, Any]:
    return {
        "customer_id": cid * 26,
        "order_count": orders,
        "revenue_minor": revenue,
        "last_order_at": NOW - timedelta(days=days_ago),
    }


async def test_hand_checked_first_run_and_rescore(retention: RunningService) -> None:
    """Seven buyers scored by hand (docs/services/retention.md, "Customer value"): with n = 7 the
    cut-offs are the values at positions 2, 3, 5 and 6, the top customers those with at least
    the revenue of the 2nd from the top. Then a, the weakest, buys big, g refunds everything:
    the scores stay the first run's until the rescore, which moves six customers' (b keeps
    111) and writes only the tenant's cut-offs."""
    tenant = f"rfmh-{uuid.uuid4().hex[:8]}"
    facts = [
        _fact("a", 1, 100, 30),
        _fact("b", 1, 200, 20),
        _fact("c", 2, 300, 10),
        _fact("d", 2, 300, 5),
        _fact("e", 3, 500, 3),
        _fact("f", 5, 800, 2),
        _fact("g", 8, 1000, 1),
    ]
    await seed(retention, tenant, facts)
    # First run: every buyer's scores go from 0 to these.
    assert await rescore(retention, tenant) == 7
    assert await scores(retention, tenant) == {
        "a" * 26: (1, 1, 1, 111, False),
        "b" * 26: (1, 1, 1, 111, False),
        "c" * 26: (2, 2, 2, 222, False),
        "d" * 26: (3, 2, 2, 322, False),
        "e" * 26: (3, 3, 3, 333, False),
        "f" * 26: (4, 4, 4, 444, True),
        "g" * 26: (5, 5, 5, 555, True),
    }
    first = await scores(retention, tenant)
    assert await rescore(retention, tenant) == 7
    assert await scores(retention, tenant) == first

    async def change(session: Any) -> None:
        a = await session.get(ActivityRow, (tenant, "a" * 26))
        a.order_count, a.revenue_minor, a.last_order_at = 2, 1100, NOW
        g = await session.get(ActivityRow, (tenant, "g" * 26))
        g.order_count, g.revenue_minor, g.last_order_at, g.first_order_at = 0, 0, None, None
        await session.flush()
        for r in (a, g):
            await ActivityRepository().keep_value_inputs(session, r)

    await transact(retention.runtime.sessions, change)
    assert await scores(retention, tenant) == first  # until the next rescore
    versions = await row_versions(retention, tenant)
    # n = 6: cut-offs at positions 2, 3, 4 and 5; top: revenue of the 2nd from the top (800).
    assert await rescore(retention, tenant) == 6
    assert await row_versions(retention, tenant) == versions  # no customer's row written
    assert await cut_offs(retention, tenant) == (
        6,
        tuple(NOW - timedelta(days=d) for d in (10, 5, 3, 2)),
        (2, 2, 2, 3),
        (300, 300, 500, 800),
        800,
    )
    assert await scores(retention, tenant) == {
        "a" * 26: (5, 1, 5, 515, True),
        "b" * 26: (1, 1, 1, 111, False),
        "c" * 26: (1, 1, 1, 111, False),
        "d" * 26: (2, 1, 1, 211, False),
        "e" * 26: (3, 4, 3, 343, False),
        "f" * 26: (4, 5, 4, 454, True),
        "g" * 26: (0, 0, 0, 0, False),
    }
    assert await rescore(retention, tenant) == 6


async def test_scores_hold_until_the_next_rescore(retention: RunningService) -> None:
    """Between two rescores every reader (the row, a segment, the top list) answers what the
    last rescore gave: a new buyer is unscored, a changed buyer keeps their scores, however often
    their inputs change; the rescore then ranks everyone's current inputs."""
    tenant = f"rfmk-{uuid.uuid4().hex[:8]}"
    facts = [_fact("a", 1, 100, 30), _fact("b", 2, 300, 10), _fact("c", 3, 500, 2)]
    await seed(retention, tenant, facts)
    await rescore(retention, tenant)
    first = await scores(retention, tenant)
    assert first == reference(facts)

    async def preview(session: Any) -> int:
        node = language.parse("top_customer = true OR rfm_score >= 111")
        return int((await session.execute(compiler.count_query(tenant, node, NOW))).scalar())

    async def top(session: Any) -> list[str]:
        activity = ActivityService(Outbox(kit, "retention"), RulesRepository())
        views = await activity.top_customers(session, tenant, 10, recompute=False)
        return [v.customer_id for v in views]

    assert await transact(retention.runtime.sessions, preview) == 3
    assert await transact(retention.runtime.sessions, top) == ["c" * 26]

    later = [_fact("a", 4, 9000, 0), _fact("b", 0, 0, 0), _fact("d", 1, 50, 1)]
    later[1]["last_order_at"] = None

    async def change(session: Any) -> None:
        for f in later:
            r = await session.get(ActivityRow, (tenant, f["customer_id"]))
            if r is None:
                r = row(tenant, f)
                session.add(r)
            # Twice: the held inputs are the ranked ones, not the ones in between.
            for step in (dict(f, revenue_minor=f["revenue_minor"] // 2), f):
                r.order_count, r.revenue_minor = step["order_count"], step["revenue_minor"]
                r.last_order_at = step["last_order_at"]
                await session.flush()
                await ActivityRepository().keep_value_inputs(session, r)

    await transact(retention.runtime.sessions, change)
    assert await scores(retention, tenant) == {**first, "d" * 26: (0, 0, 0, 0, False)}
    assert await transact(retention.runtime.sessions, preview) == 3
    assert await transact(retention.runtime.sessions, top) == ["c" * 26]

    assert await rescore(retention, tenant) == 3
    now = [later[0], facts[2], later[2]]
    assert await scores(retention, tenant) == {**reference(now), "b" * 26: (0, 0, 0, 0, False)}
    assert await transact(retention.runtime.sessions, top) == ["a" * 26]
    assert await transact(retention.runtime.sessions, preview) == 3


async def test_cut_offs_are_exact_from_any_guess(retention: RunningService) -> None:
    """A rescore starts from guesses (the last cut-offs, or a sample's) and walks the index to
    the exact positions: whatever the guesses (below, above, between or at values, missing),
    the cut-offs are those of the sorted values."""
    tenant = f"rfmg-{uuid.uuid4().hex[:8]}"
    facts = buyers(137, seed=11)
    await seed(retention, tenant, facts)
    names = [name for name, _, _ in value._PICKS]

    async def exact(guesses: dict[str, Any]) -> dict[str, Any]:
        async def work(session: Any) -> dict[str, Any]:
            return await value.cut_offs(session, tenant, guesses)

        return await transact(retention.runtime.sessions, work)

    expected = await exact({})
    ref = reference(facts)
    assert expected["buyers"] == 137
    rng = random.Random(3)
    by_column = {
        "last_order_at": [f["last_order_at"] for f in facts],
        "order_count": [f["order_count"] for f in facts],
        "revenue_minor": [f["revenue_minor"] for f in facts],
    }
    offsets = {"last_order_at": timedelta(hours=7), "order_count": 0, "revenue_minor": 7}
    for trial in range(6):
        guesses: dict[str, Any] = {}
        for name, column, _ in value._PICKS:
            values = by_column[column]
            pick = {
                0: min(values),
                1: max(values),
                2: rng.choice(values),
                3: rng.choice(values) + offsets[column],  # between values
                4: min(values) - offsets[column] if column != "order_count" else 0,
                5: None,
            }[(trial + names.index(name)) % 6]
            guesses[name] = pick
        assert await exact(guesses) == expected, guesses
    # And they give the reference scores.
    await rescore(retention, tenant)
    assert await scores(retention, tenant) == ref


@pytest.mark.parametrize("retention", ["postgres"], indirect=True)
async def test_the_top_list_walks_the_revenue_index(retention: RunningService) -> None:
    """On PostgreSQL the top list is read in the order of `ix_activity_tenant_revenue`
    (migration 0020_segment5): no Sort of every customer's row, the walk stops at the limit.
    Sequential scans and sorts are made unattractive for the EXPLAIN so the tiny test table
    cannot hide the plan; without the index the plan must still sort. The answer is the
    ordered list either way (checked against the facts)."""
    tenant = f"rfm-{uuid.uuid4().hex[:8]}"
    facts = buyers(60, seed=11)
    await seed(retention, tenant, facts)
    await rescore(retention, tenant)
    query = value.top_customers_query(tenant, 5)

    async def plan_and_top(session: Any) -> tuple[str, list[str]]:
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        await session.execute(text("SET LOCAL enable_sort = off"))
        compiled = query.compile(
            dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
        )
        lines = await session.execute(text(f"EXPLAIN (COSTS OFF) {compiled}"))
        top = await value.top_customers(session, tenant, 5)
        return "\n".join(r[0] for r in lines), [r.customer_id for r in top]

    plan, got = await transact(retention.runtime.sessions, plan_and_top)
    assert "ix_activity_tenant_revenue" in plan, plan
    assert "Sort" not in plan, plan
    ranked = sorted(facts, key=lambda f: (-f["revenue_minor"], f["customer_id"]))
    assert got == [f["customer_id"] for f in ranked][: len(got)] and len(got) == 5
