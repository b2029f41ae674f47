"""An event under a merged-away id (a late lead.assigned of m2 after m2 merged into m1) and an
event under the survivor's own id change the same funnel rows: the per-day rollup counts a change
once only when one transaction at a time changes a customer's rows, so the first must hold the
survivor's lock too (`FunnelService._live`). The test forces the two transactions to interleave
on PostgreSQL (SQLite runs one writer at a time)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text
from test_funnel_rollup import assert_recount_in

from closedloop_retention.funnel.repository import FunnelRepository
from closedloop_retention.funnel.service import FunnelService, Source
from closedloop_retention.models import FunnelDailyRow, FunnelStepRow
from loopkit_dev.testing import RunningService, eventually
from retention_helpers import customer, tenant

LEAD = datetime(2026, 9, 3, 9, tzinfo=UTC)
ASSIGNED = datetime(2026, 9, 4, 10, tzinfo=UTC)  # both assignments on the same UTC day
ASSIGNED_AGAIN = datetime(2026, 9, 4, 9, tzinfo=UTC)


async def _waiting(retention: RunningService, task: asyncio.Task[None], pids: list[int]) -> bool:
    """Whether the task is done or its connection (backend `pids[0]`) waits for a lock."""
    if task.done():
        return True
    if not pids:
        return False
    async with retention.runtime.sessions() as watcher:
        query = text("SELECT count(*) FROM pg_locks WHERE pid = :pid AND NOT granted")
        return bool(await watcher.scalar(query, {"pid": pids[0]}))


# SQLite has one writer at a time: the two transactions cannot interleave there.
@pytest.mark.parametrize("retention", ["postgres"], indirect=True)
async def test_events_of_a_merged_id_and_of_its_survivor_count_a_change_once(
    retention: RunningService,
) -> None:
    t, survivor, gone = tenant(), customer(), customer()
    funnel = FunnelService(FunnelRepository())
    async with retention.runtime.sessions() as session, session.begin():
        await funnel.lead_captured(session, t, survivor, LEAD, Source("", ""))
    async with retention.runtime.sessions() as session, session.begin():
        await funnel.merge(session, t, survivor, gone)

    # The merged-away id's event: its transaction records the survivor's "assigned" step and
    # counts it in the rollup, and has not committed yet.
    async with retention.runtime.sessions() as first:
        await first.begin()
        await funnel.lead_assigned(first, t, gone, ASSIGNED)

        pids: list[int] = []

        async def survivors_own_event() -> None:
            async with retention.runtime.sessions() as session, session.begin():
                pids.append(int(await session.scalar(text("SELECT pg_backend_pid()"))))
                await funnel.lead_assigned(session, t, survivor, ASSIGNED_AGAIN)

        other = asyncio.create_task(survivors_own_event())
        # It waits for the first: on the survivor's lock (with the fix), else on the first's
        # uncommitted step row, having read the survivor's rows as they were before either.
        await eventually(lambda: _waiting(retention, other, pids), interval_s=0.01)
        assert not other.done()
        await first.commit()
    await other

    async with retention.runtime.sessions() as s:
        rows = await s.scalar(
            select(func.count())
            .select_from(FunnelStepRow)
            .where(FunnelStepRow.tenant_id == t, FunnelStepRow.step == "assigned")
        )
        counted = await s.scalar(
            select(FunnelDailyRow.customers).where(
                FunnelDailyRow.tenant_id == t,
                FunnelDailyRow.dim == "all",
                FunnelDailyRow.step == "assigned",
            )
        )
        assert rows == 1
        assert counted == 1  # 2 when both transactions counted the survivor's new step
        await assert_recount_in(s, t)
