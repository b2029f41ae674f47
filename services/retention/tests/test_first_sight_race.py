"""A customer seen for the first time by two consumers at once (acquisition's and conversion's
events reach retention on separate consumers) gets one activity row and one "first seen" stage
change, and neither transaction fails on the row's key (a failure would cost the event a strike
and a redelivery)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from closedloop_retention.activity.rules import RulesRepository
from closedloop_retention.activity.service import ActivityService
from closedloop_retention.models import ActivityRow, StageChangeRow, kit
from loopkit.events import Outbox
from loopkit_dev.testing import RunningService

AT = datetime(2026, 11, 30, 9, tzinfo=UTC)


def _service() -> ActivityService:
    return ActivityService(Outbox(kit, "retention"), RulesRepository())


async def _history(service: RunningService, tenant: str, customer: str) -> tuple[int, list[Any]]:
    async with service.runtime.sessions() as session:
        rows = await session.scalar(
            select(func.count()).select_from(ActivityRow).where(ActivityRow.tenant_id == tenant)
        )
        changes = await session.execute(
            select(StageChangeRow.to_stage, StageChangeRow.reason).where(
                StageChangeRow.tenant_id == tenant, StageChangeRow.customer_id == customer
            )
        )
        return int(rows or 0), [tuple(c) for c in changes]


async def test_a_row_created_meanwhile_is_taken_not_duplicated(retention: RunningService) -> None:
    """The second sighting's insert yields to the row stored first and keeps its history."""
    tenant, customer = f"race-{uuid.uuid4().hex[:8]}", "c-first-sight"
    activity = _service()
    async with retention.runtime.sessions() as session, session.begin():
        await activity.touch(session, tenant, customer, AT)
    async with retention.runtime.sessions() as session, session.begin():
        stored, created = await activity._repo.add_unless_present(
            session,
            ActivityRow(
                tenant_id=tenant,
                customer_id=customer,
                first_seen_at=AT,
                last_seen_at=AT,
                active_hours=[0] * 24,
                next_review_at=AT,
            ),
        )
        assert not created
        assert stored.stage_reason == "known customer, no order yet"
    assert await _history(retention, tenant, customer) == (
        1,
        [("investigation", "first seen")],
    )


# SQLite has one writer at a time: no two transactions insert at once there.
@pytest.mark.parametrize("retention", ["postgres"], indirect=True)
async def test_two_first_sightings_at_once_on_postgres(retention: RunningService) -> None:
    tenant, customer = f"race-{uuid.uuid4().hex[:8]}", "c-both"
    activity = _service()
    async with retention.runtime.sessions() as first:
        await first.begin()
        await activity.touch(first, tenant, customer, AT)  # inserted, not committed

        async def second_sighting() -> None:
            async with retention.runtime.sessions() as session, session.begin():
                row = await activity.touch(session, tenant, customer, AT + timedelta(hours=1))
                assert row.last_seen_at is not None

        other = asyncio.create_task(second_sighting())
        # The second insert waits on the first's uncommitted key: wait until PostgreSQL shows it
        # waiting (a lock not granted), so the commit below really races it.
        async with retention.runtime.sessions() as watcher:
            while not other.done():
                waiting = await watcher.scalar(
                    text("SELECT count(*) FROM pg_locks WHERE NOT granted")
                )
                await watcher.rollback()
                if waiting:
                    break
                await asyncio.sleep(0.01)
        await first.commit()
    await other  # no IntegrityError: it took the committed row
    rows, history = await _history(retention, tenant, customer)
    assert rows == 1
    assert history == [("investigation", "first seen")]
    async with retention.runtime.sessions() as session:
        row = await session.get(ActivityRow, (tenant, customer))
        assert row is not None
        assert row.last_seen_at.replace(tzinfo=UTC) == AT + timedelta(hours=1)
