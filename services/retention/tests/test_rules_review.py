"""A lifecycle rules change commits at once with a marker; the background sweep reviews every
customer under the new rules in batches, each its own transaction, resuming where it stopped."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, cast

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select
from test_sweep_batches import COMPARED, NOW, _xmins, customers, outcome, row

from closedloop.retention.v1 import retention_pb2 as pb
from closedloop.retention.v1 import retention_pb2_grpc
from closedloop_retention.activity.rules import Rules, RulesRepository
from closedloop_retention.activity.service import ActivityService, ReviewStep
from closedloop_retention.models import ActivityRow, RulesRow, kit
from closedloop_retention.transport.workers import Workers
from loopkit.db import transact
from loopkit.events import Outbox
from loopkit.uow import UnitOfWork
from loopkit_dev.testing import RunningService

LATER = NOW + timedelta(minutes=1)
_LIFECYCLE = ("stage.changed", "churn_risk.raised")
N = 150
BATCH = 40  # four batches, the last one short


def _activity() -> ActivityService:
    return ActivityService(Outbox(kit, "retention"), RulesRepository())


async def _seeded(retention: RunningService, *tenants: str) -> ActivityService:
    """N customers of varied facts in each tenant, swept once at NOW."""
    activity = _activity()

    async def seed(session: Any) -> None:
        for t in tenants:
            session.add_all(row(t, dict(f)) for f in customers(N))

    await transact(retention.runtime.sessions, seed)
    for t in tenants:
        await transact(retention.runtime.sessions, lambda s, t=t: activity.sweep(s, t, NOW))
    return activity


async def _set_rules(
    retention: RunningService, activity: ActivityService, tenant: str, days: int
) -> None:
    await transact(
        retention.runtime.sessions,
        lambda s: activity.set_rules(s, tenant, {"expected_cycle_days": days}, LATER),
    )


async def _step(
    retention: RunningService, activity: ActivityService, tenant: str
) -> ReviewStep | None:
    return await transact(
        retention.runtime.sessions, lambda s: activity.review_step(s, tenant, LATER, batch=BATCH)
    )


async def _marker(retention: RunningService, tenant: str) -> tuple[object, str]:
    async with retention.runtime.sessions() as session:
        found = await session.get(RulesRow, tenant)
        assert found is not None
        return found.review_wanted_at, found.review_after


async def _recomputed(
    retention: RunningService, activity: ActivityService, tenant: str, days: int, upto: int = N
) -> None:
    """The reference: each of the first `upto` customers recomputed alone under the rules."""

    async def work(session: Any) -> None:
        await RulesRepository().put(session, tenant, Rules(expected_cycle_days=days))
        rows = await session.scalars(
            select(ActivityRow)
            .where(ActivityRow.tenant_id == tenant)
            .order_by(ActivityRow.customer_id)
            .limit(upto)
        )
        for r in rows:
            await activity.recompute(session, r, LATER)

    await transact(retention.runtime.sessions, work)


async def _same_decisions(retention: RunningService, tenant: str, alone: str) -> bool:
    """The same stages, review moments, raised risks, stage changes and events (the set-based
    review leaves a reason alone that differs only by the days elapsed)."""
    decided = ("stage", "stage_changed_at", "next_review_at", "churn_risk_raised_at")
    keep = [0, *(1 + COMPARED.index(name) for name in decided)]
    (mine, changes, events), (theirs, their_changes, their_events) = (
        await outcome(retention, tenant),
        await outcome(retention, alone),
    )
    return (
        [[r[i] for i in keep] for r in mine] == [[r[i] for i in keep] for r in theirs]  # type: ignore[attr-defined]
        and changes == their_changes
        and events == their_events
    )


def _new_tenant(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_a_rules_change_writes_only_the_rules_and_the_marker(
    retention: RunningService,
) -> None:
    """SetLifecycleRules answers without rewriting one customer: stages read as before."""
    tenant = _new_tenant("rq")
    await _seeded(retention, tenant)
    before = await outcome(retention, tenant)
    postgres = retention.runtime.engine.dialect.name == "postgresql"
    xmins = await _xmins(retention, tenant) if postgres else None
    stub = retention_pb2_grpc.RetentionServiceStub(retention.channel)
    await stub.SetLifecycleRules(
        pb.SetLifecycleRulesRequest(
            tenant_id=tenant,
            rules=pb.LifecycleRules(expected_cycle_days=9),
            fields=["expected_cycle_days"],
        )
    )
    assert await outcome(retention, tenant) == before
    if postgres:
        assert await _xmins(retention, tenant) == xmins  # not one row rewritten
    wanted_at, after = await _marker(retention, tenant)
    assert wanted_at is not None and after == ""


async def test_the_worker_round_reviews_everyone_as_recompute_does(
    retention: RunningService,
) -> None:
    tenant, alone = _new_tenant("round"), _new_tenant("alone")
    activity = await _seeded(retention, tenant, alone)
    before = await outcome(retention, tenant)
    woken: list[int] = []
    activity.on_review_wanted = lambda: woken.append(1)
    await _set_rules(retention, activity, tenant, 9)
    assert woken == [1]  # after the commit: the sweep's worker starts the review at once

    uow = UnitOfWork(retention.runtime.sessions)
    sender = retention.runtime.parts["sender"]
    workers = Workers(uow, activity=activity, broadcasts=cast(Any, None), sender=sender)
    await workers.review_pending(LATER, batch=BATCH)
    await _recomputed(retention, activity, alone, 9)
    assert await _same_decisions(retention, tenant, alone)
    changes = (await outcome(retention, tenant))[1]
    assert len(changes) > len(before[1])  # type: ignore[arg-type]  # some customers moved
    assert await _marker(retention, tenant) == (None, "")


async def test_an_interrupted_review_resumes_where_it_stopped(
    retention: RunningService,
) -> None:
    tenant, alone = _new_tenant("resume"), _new_tenant("alone")
    activity = await _seeded(retention, tenant, alone)
    await _set_rules(retention, activity, tenant, 9)
    first = await _step(retention, activity, tenant)
    assert first == ReviewStep(BATCH, first.changed if first else 0, False)
    _, after = await _marker(retention, tenant)
    assert after == f"{BATCH - 1:026d}"  # the position is stored with the marker

    # A fresh service (a restart): the next steps start after the stored position.
    resumed = _activity()
    examined, steps = BATCH, 0
    while True:
        step = await _step(retention, resumed, tenant)
        assert step is not None
        examined, steps = examined + step.examined, steps + 1
        if step.finished:
            break
    assert (examined, steps) == (N, 3)  # every customer once: none twice, none skipped
    assert await _step(retention, resumed, tenant) is None  # the marker is gone
    await _recomputed(retention, activity, alone, 9)
    assert await _same_decisions(retention, tenant, alone)


async def test_a_second_change_mid_review_restarts_it(retention: RunningService) -> None:
    tenant, alone = _new_tenant("again"), _new_tenant("alone")
    activity = await _seeded(retention, tenant, alone)
    await _set_rules(retention, activity, tenant, 9)
    assert await _step(retention, activity, tenant) is not None
    await _set_rules(retention, activity, tenant, 20)
    assert (await _marker(retention, tenant))[1] == ""  # from the first customer again
    examined = 0
    while (step := await _step(retention, activity, tenant)) is not None:
        examined += step.examined
    assert examined == N
    # The reference: the first batch under the first rules, then everyone under the second.
    await _recomputed(retention, activity, alone, 9, upto=BATCH)
    await _recomputed(retention, activity, alone, 20)
    assert await _same_decisions(retention, tenant, alone)


@pytest.mark.parametrize("retention", ["postgres"], indirect=True)  # SQLite: one process
async def test_one_process_at_a_time_runs_a_batch(retention: RunningService) -> None:
    """PostgreSQL: while one replica's batch holds the tenant's rules row, another's step skips
    it (SKIP LOCKED) instead of reviewing the same customers."""
    tenant = _new_tenant("lock")
    activity = await _seeded(retention, tenant)
    await _set_rules(retention, activity, tenant, 9)
    async with retention.runtime.sessions() as held, held.begin():
        assert await RulesRepository().claim_review(held, tenant) is not None
        assert await _step(retention, activity, tenant) is None
    assert await _step(retention, activity, tenant) is not None


async def test_sweep_lifecycle_runs_the_pending_review_first(retention: RunningService) -> None:
    """`SweepLifecycle` after a rules change reviews every customer under the new rules (the
    pending review, in batches) before the due sweep, and clears the marker: its answer is the
    new rules' for everyone, not only for the customers whose review moment came."""
    tenant, alone = _new_tenant("rpc"), _new_tenant("alone")
    await _seeded(retention, tenant, alone)
    before = await outcome(retention, tenant)
    stub = retention_pb2_grpc.RetentionServiceStub(retention.channel)
    await stub.SetLifecycleRules(
        pb.SetLifecycleRulesRequest(
            tenant_id=tenant,
            rules=pb.LifecycleRules(expected_cycle_days=9),
            fields=["expected_cycle_days"],
        )
    )
    as_of = Timestamp()
    as_of.FromDatetime(LATER)
    swept = await stub.SweepLifecycle(pb.SweepLifecycleRequest(tenant_id=tenant, as_of=as_of))
    assert await _marker(retention, tenant) == (None, "")
    # The reference with the service's own playbook (the review makes its win-back offers).
    await _recomputed(retention, retention.runtime.parts["activity"], alone, 9)
    (mine, changes, events), (theirs, their_changes, their_events) = (
        await outcome(retention, tenant),
        await outcome(retention, alone),
    )
    # A full review leaves the churn risk and reason of a customer whose decisions stand.
    decided = ("stage", "stage_changed_at", "next_review_at", "churn_risk_raised_at")
    keep = [0, *(1 + COMPARED.index(name) for name in (*decided, "win_back_attempts"))]
    assert [[r[i] for i in keep] for r in mine] == [[r[i] for i in keep] for r in theirs]  # type: ignore[attr-defined]
    assert changes == their_changes

    def comparable(found: object) -> list[tuple[object, ...]]:
        # An offer's coupon and offer ids are its own: those events compare by kind.
        return [e if e[1] in _LIFECYCLE else e[:2] for e in found]  # type: ignore[attr-defined]

    assert comparable(events) == comparable(their_events)
    moved = len(changes) - len(before[1])  # type: ignore[arg-type]
    assert moved > 0
    assert swept.examined >= N and swept.changed == moved
