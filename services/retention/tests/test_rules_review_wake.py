"""A committed rules change wakes the lifecycle sweep's worker: the review starts at once, not at
the next round (an hour away here)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select
from test_sweep_batches import customers, row

from closedloop.retention.v1 import retention_pb2 as pb
from closedloop.retention.v1 import retention_pb2_grpc
from closedloop_retention.main import DEFINITION
from closedloop_retention.models import RulesRow, StageChangeRow
from loopkit.db import transact
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import PostgresServer, RunningService, eventually, running_service


@pytest_asyncio.fixture(loop_scope="session", scope="module", params=["sqlite", "postgres"])
async def swept(
    request: pytest.FixtureRequest,
    nats_server: NatsServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningService]:
    """The service with its periodic sweep on, the next round an hour away."""
    tmp_path = tmp_path_factory.mktemp("retention-swept")
    url = f"sqlite+aiosqlite:///{tmp_path}/retention.db"
    if request.param == "postgres":
        pg: PostgresServer = request.getfixturevalue("postgres")
        url = await pg.fresh_database()
    async with running_service(
        DEFINITION,
        database_url=url,
        nats_url=nats_server.url,
        state_dir=tmp_path,
        sweep_interval_s=3600,
        dispatch_interval_s=0,
        sandbox_log="",
    ) as svc:
        yield svc


async def test_a_rules_change_wakes_the_review(swept: RunningService) -> None:
    tenant = f"wake-{uuid.uuid4().hex[:8]}"

    async def seed(session: Any) -> None:
        session.add_all(row(tenant, dict(f)) for f in customers(60))

    await transact(swept.runtime.sessions, seed)
    stub = retention_pb2_grpc.RetentionServiceStub(swept.channel)
    await stub.SetLifecycleRules(
        pb.SetLifecycleRulesRequest(
            tenant_id=tenant,
            rules=pb.LifecycleRules(expected_cycle_days=9),
            fields=["expected_cycle_days"],
        )
    )

    async def reviewed() -> bool:
        async with swept.runtime.sessions() as session:
            marker = await session.get(RulesRow, tenant)
            changes = await session.scalar(
                select(func.count()).where(StageChangeRow.tenant_id == tenant)
            )
            return marker is not None and marker.review_wanted_at is None and bool(changes)

    await eventually(reviewed)
