"""An incremental RFM rescore (activity/value.py) moves the last cut-offs by the rows changed
since, and gives exactly the cut-offs of ranking every buyer again: random rounds of changes as
the order, merge, unmerge and erasure paths make them (inputs up and down, buyers refunded to
none, new buyers, rows deleted, one customer changed several times in a round), each rescored
incrementally and compared with a count of everyone. On PostgreSQL, a writer of the inputs waits
for a rescore in progress and tags its change with the new generation."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from test_rfm_scores import NOW, buyers, row, seed

from closedloop_retention.activity import value
from closedloop_retention.activity.repository import ActivityRepository
from closedloop_retention.models import ActivityRow, CustomerValueRow, RfmCutOffsRow
from loopkit.db import transact
from loopkit_dev.testing import RunningService

NAMES = [name for name, _, _ in value._PICKS]


def _moment(v: Any) -> Any:
    # SQLite reads times back without their zone (stored as UTC).
    return v.replace(tzinfo=None) if hasattr(v, "tzinfo") else v


def _cuts(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "buyers": values["buyers"],
        **{name: _moment(values[name]) for name in NAMES},
        "ranks": {k: list(v) for k, v in (values["ranks"] or {}).items()},
    }


async def _stored(service: RunningService, tenant: str) -> dict[str, Any]:
    async with service.runtime.sessions() as session:
        c = await session.get(RfmCutOffsRow, tenant)
        assert c is not None
        return _cuts({"buyers": c.buyers, "ranks": c.ranks, **{n: getattr(c, n) for n in NAMES}})


async def _from_scratch(service: RunningService, tenant: str) -> dict[str, Any]:
    async def work(session: Any) -> dict[str, Any]:
        return await value.cut_offs(session, tenant, {})

    return _cuts(await transact(service.runtime.sessions, work))


async def _rescore(service: RunningService, tenant: str, **kw: Any) -> value.Rescore:
    async def work(session: Any) -> value.Rescore:
        return await value.rescore(session, tenant, **kw)

    return await transact(service.runtime.sessions, work)


async def _change(service: RunningService, tenant: str, rng: random.Random, size: int) -> int:
    """One round of random changes through the repository; returns the customers touched."""
    repo = ActivityRepository()
    touched: set[str] = set()

    async def work(session: Any) -> None:
        ids = list(
            await session.scalars(
                select(ActivityRow.customer_id).where(ActivityRow.tenant_id == tenant)
            )
        )
        for _ in range(size):
            action = rng.random()
            if action < 0.15:  # a new buyer
                cid = uuid.uuid4().hex[:26]
                f = buyers(1, rng.randrange(10**6))[0] | {"customer_id": cid}
                r = row(tenant, f)
                session.add(r)
                await session.flush()
                await repo.keep_value_inputs(session, r)
                ids.append(cid)
                touched.add(cid)
                continue
            if not ids:
                continue
            cid = rng.choice(ids)
            touched.add(cid)
            if action < 0.25:  # deleted (a merge's or unmerge's drop, an erasure)
                ids.remove(cid)
                if rng.random() < 0.5:
                    await repo.drop_value(session, tenant, cid)
                    await session.execute(
                        ActivityRow.__table__.delete().where(
                            ActivityRow.tenant_id == tenant, ActivityRow.customer_id == cid
                        )
                    )
                else:
                    await repo.forget(session, tenant, [cid])
                continue
            r = await session.get(ActivityRow, (tenant, cid))
            assert r is not None
            if action < 0.35:  # every order refunded: no buyer any more
                r.order_count, r.revenue_minor = 0, 0
            elif action < 0.45 and r.order_count > 1:  # one refunded
                r.order_count -= 1
                r.revenue_minor = max(r.revenue_minor - rng.choice([990, 1990]), 0)
            else:  # another order (values already present, so ties move too)
                r.order_count += rng.choice([1, 1, 2])
                r.revenue_minor += rng.choice([990, 1990, 4990])
                r.last_order_at = NOW - timedelta(days=rng.randrange(0, 30))
            await session.flush()
            await repo.keep_value_inputs(session, r)

    await transact(service.runtime.sessions, work)
    return len(touched)


async def test_incremental_rescores_match_ranking_everyone(
    retention: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Incremental however much changed (a round changes up to 15 of ~211 buyers), but for the
    # first two rescores and every FULL_EVERY-th.
    monkeypatch.setattr(value, "FULL_SHARE", 1.0)
    tenant = f"rfmi-{uuid.uuid4().hex[:8]}"
    await seed(retention, tenant, buyers(211, seed=5))
    first = await _rescore(retention, tenant)
    assert first.full  # no cut-offs yet
    second = await _rescore(retention, tenant)
    assert second.full  # the first rescore left no ranks (writers may have raced it)
    assert await _stored(retention, tenant) == await _from_scratch(retention, tenant)

    # Nothing changed: no row read, the same cut-offs.
    before = await _stored(retention, tenant)
    same = await _rescore(retention, tenant)
    assert (same.full, same.rows_read) == (False, 0)
    assert await _stored(retention, tenant) == before

    rng = random.Random(17)
    incremental = 0
    for round_ in range(20):
        size = rng.choice([1, 3, 8, 15])
        touched = await _change(retention, tenant, rng, size)
        done = await _rescore(retention, tenant)
        got = await _stored(retention, tenant)
        assert got == await _from_scratch(retention, tenant), (round_, done)
        if not done.full:
            incremental += 1
            assert done.rows_read <= touched, (done, touched)
    assert incremental == 20

    # An explicit full rescore gives the same cut-offs again.
    before = await _stored(retention, tenant)
    assert (await _rescore(retention, tenant, full=True)).full
    assert await _stored(retention, tenant) == before


async def test_many_changes_rank_everyone(retention: RunningService) -> None:
    tenant = f"rfmm-{uuid.uuid4().hex[:8]}"
    await seed(retention, tenant, buyers(40, seed=8))
    await _rescore(retention, tenant)
    await _rescore(retention, tenant)
    await _change(retention, tenant, random.Random(2), 5)  # over FULL_SHARE (2 %) of 40
    done = await _rescore(retention, tenant)
    assert done.full
    assert await _stored(retention, tenant) == await _from_scratch(retention, tenant)


@pytest.mark.parametrize("retention", ["postgres"], indirect=True)
async def test_a_writer_waits_for_a_rescore_in_progress(
    retention: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rescore holds its cut-offs row's lock until it commits; an order's copy of the inputs
    reads the generation under a share lock of that row, so it waits and then holds what the
    rescore ranked under the rescore's generation (else the next incremental rescore would
    never see the change)."""
    monkeypatch.setattr(value, "FULL_SHARE", 1.0)
    tenant = f"rfmw-{uuid.uuid4().hex[:8]}"
    await seed(retention, tenant, buyers(20, seed=4))
    await _rescore(retention, tenant)
    await _rescore(retention, tenant)
    cid = f"{3:026d}"
    generation = (await _stored_generation(retention, tenant)) + 1

    async with retention.runtime.sessions() as rescoring:
        async with rescoring.begin():
            await value.rescore(rescoring, tenant)

            async def order(session: Any) -> None:
                r = await session.get(ActivityRow, (tenant, cid))
                assert r is not None
                r.order_count += 1
                r.revenue_minor += 990
                await session.flush()
                await ActivityRepository().keep_value_inputs(session, r)

            writer = asyncio.create_task(transact(retention.runtime.sessions, order))
            # The writer is blocked on the cut-offs row's lock while the rescore is open.
            await _wait_for_lock_wait(retention, within_s=10)
            assert not writer.done()
        await asyncio.wait_for(writer, 10)

    async with retention.runtime.sessions() as session:
        v = await session.get(CustomerValueRow, (tenant, cid))
        assert v is not None
        assert v.held_generation == generation
    done = await _rescore(retention, tenant)
    assert not done.full and done.rows_read == 1
    assert await _stored(retention, tenant) == await _from_scratch(retention, tenant)


async def _stored_generation(service: RunningService, tenant: str) -> int:
    async with service.runtime.sessions() as session:
        c = await session.get(RfmCutOffsRow, tenant)
        assert c is not None
        return c.generation


async def _wait_for_lock_wait(service: RunningService, *, within_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        async with service.runtime.sessions() as session:
            waiting = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            )
        if waiting:
            return
        assert loop.time() < deadline, "the writer never waited for the rescore"
        await asyncio.sleep(0.02)
