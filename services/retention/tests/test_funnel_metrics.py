"""The per-tenant funnel gauges on retention's /metrics: unique customers per TLSRRR step, from
the funnel read model, refreshed by the periodic worker (a repeat submission is one lead)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
from nats.aio.client import Client
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from test_funnel import assigned, lead, touch
from ulid import ULID

from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop_retention.funnel.views import Step
from closedloop_retention.main import DEFINITION
from closedloop_retention.transport.funnel_metrics import FunnelMetrics
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import (
    PostgresServer,
    RunningService,
    answer_of,
    eventually,
    running_service,
)
from retention_helpers import customer, paid, publish, tenant


@pytest_asyncio.fixture(loop_scope="session", scope="module", params=["sqlite", "postgres"])
async def retention(
    request: pytest.FixtureRequest,
    nats_server: NatsServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningService]:
    """Retention with the gauges refreshed often and shown for one tenant only (the busiest)."""
    tmp_path = tmp_path_factory.mktemp("retention")
    url = f"sqlite+aiosqlite:///{tmp_path}/retention.db"
    if request.param == "postgres":
        pg: PostgresServer = request.getfixturevalue("postgres")
        url = await pg.fresh_database()
    async with running_service(
        DEFINITION,
        database_url=url,
        nats_url=nats_server.url,
        state_dir=tmp_path,
        sweep_interval_s=0,
        dispatch_interval_s=0,
        sandbox_log="",
        funnel_metrics_interval_s=0.2,
        funnel_metrics_max_tenants=1,
    ) as svc:
        yield svc


async def gauges(svc: RunningService) -> dict[str, dict[str, float]]:
    """tenant -> step -> closedloop_funnel_customers, and "" -> tenants left out."""
    async with httpx.AsyncClient(trust_env=False) as http:
        text = (await http.get(f"{svc.http_url}/metrics")).text
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "closedloop_funnel_customers":
                out.setdefault(sample.labels["tenant"], {})[sample.labels["step"]] = sample.value
            elif sample.name == "closedloop_funnel_tenants_left_out":
                out[""] = {"left_out": sample.value}
    return out


async def test_the_metrics_show_each_tenants_unique_customers_per_step(
    retention: RunningService, nats_client: Client
) -> None:
    nc, t, other = nats_client, tenant(), tenant()
    a, b, c = customer(), customer(), customer()
    hour = datetime.now(UTC) - timedelta(hours=5)

    def at(n: int) -> datetime:
        return hour + timedelta(minutes=n)

    # a: scanned, left a lead, assigned, paid twice.
    await touch(nc, t, a, at(0))
    await lead(nc, t, a, at(1))
    await assigned(nc, t, a, at(2))
    await paid(nc, t, a, 10, at=at(3), order_id="o-a1")
    await paid(nc, t, a, 10, at=at(4), order_id="o-a2")
    # b: scanned and submitted twice (a resubmission, then another lead.captured): one lead.
    await touch(nc, t, b, at(5))
    await lead(nc, t, b, at(6))
    resubmitted = acq.LeadResubmitted(lead_id=str(ULID()), campaign_id="camp-1", submissions=2)
    await publish(nc, "acquisition", "lead.resubmitted", t, b, resubmitted, at=at(7))
    await lead(nc, t, b, at(8))
    # c: only scanned; and a customer of another tenant, older than the window, counts nowhere.
    await touch(nc, t, c, at(9))
    await touch(nc, t, customer(), datetime.now(UTC) - timedelta(days=45))
    # The other tenant: one lead, fewer steps than `t` (left out: one tenant is shown).
    await lead(nc, other, customer(), at(10))

    expected = {step.value: 0.0 for step in Step} | {
        "exposed": 3.0,
        "lead": 2.0,
        "assigned": 1.0,
        "first_paid": 1.0,
        "repeat": 1.0,
    }

    seen: dict[str, dict[str, float]] = {}

    async def shown() -> bool:
        seen.clear()
        seen.update(await gauges(retention))
        return seen.get(t) == expected and seen.get("", {}).get("left_out") == 1.0

    try:
        await eventually(shown)
    except AssertionError as exc:  # what the gauges showed last says which step fell behind
        raise AssertionError(
            f"{exc}; gauges of {t}: {seen.get(t)}, left out: {seen.get('')}"
        ) from exc
    found = await gauges(retention)
    # The tenant beyond the bound has no series (or zeros, had it been shown before `t`).
    assert not any(found.get(other, {}).values())


async def test_a_refresh_does_not_wait_for_a_writer(retention: RunningService) -> None:
    """The refresh only reads: on SQLite it reads its snapshot beside a batch that holds the
    write lock, instead of queueing for the lock (up to the 30 s busy timeout, then 'database is
    locked') while the consumers' batches keep taking it and the gauges go stale."""
    funnel_metrics: FunnelMetrics = retention.runtime.parts["funnel_metrics"]
    async with retention.runtime.sessions() as session, session.begin():
        await session.execute(text("SELECT 1"))  # SQLite: BEGIN IMMEDIATE, the write lock held
        await answer_of(funnel_metrics.refresh())
