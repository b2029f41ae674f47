"""The set-based lifecycle sweep decides exactly what reviewing each customer alone decides:
the same stages, reasons, review moments, churn risk, stage changes and events."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop_retention.activity.rules import RulesRepository
from closedloop_retention.activity.service import ActivityService
from closedloop_retention.models import ActivityRow, StageChangeRow, kit
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
