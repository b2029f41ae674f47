from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from closedloop.retention.v1 import retention_pb2_grpc
from closedloop_retention.main import DEFINITION
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import PostgresServer, RunningService, own_nats_server, running_service


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A nats-server per module, like the retention service itself: its consumers start on empty
    streams instead of working through every earlier test's events."""
    with own_nats_server(tmp_path_factory) as server:
        yield server


async def _database(request: pytest.FixtureRequest, tmp_path: Path, name: str) -> str:
    """A fresh database for the service under test (its own PostgreSQL database or SQLite file)."""
    if request.param == "postgres":
        pg: PostgresServer = request.getfixturevalue("postgres")
        return await pg.fresh_database()
    return f"sqlite+aiosqlite:///{tmp_path}/{name}.db"


@pytest_asyncio.fixture(loop_scope="session", scope="module", params=["sqlite", "postgres"])
async def retention(
    request: pytest.FixtureRequest,
    nats_server: NatsServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningService]:
    """The retention service running in this process, on SQLite and on PostgreSQL; one per test
    module (every test works in a tenant of its own)."""
    tmp_path = tmp_path_factory.mktemp("retention")
    url = await _database(request, tmp_path, "retention")
    async with running_service(
        DEFINITION,
        database_url=url,
        nats_url=nats_server.url,
        state_dir=tmp_path,
        sweep_interval_s=0,
        dispatch_interval_s=0.05,
        sandbox_log="",
    ) as svc:
        yield svc


@pytest.fixture
def stub(retention: RunningService) -> retention_pb2_grpc.RetentionServiceStub:
    return retention_pb2_grpc.RetentionServiceStub(retention.channel)
