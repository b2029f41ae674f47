from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from closedloop.identity.v1 import identity_pb2_grpc
from closedloop_identity.main import DEFINITION
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import PostgresServer, RunningService, own_nats_server, running_service


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """This suite's own nats-server: its stream holds only identity's own tests' events."""
    with own_nats_server(tmp_path_factory) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="session", params=["sqlite", "postgres"])
async def identity(
    request: pytest.FixtureRequest, nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[RunningService]:
    """The identity service running in this process, on SQLite and on PostgreSQL."""
    if request.param == "postgres":
        pg: PostgresServer = request.getfixturevalue("postgres")
        url = await pg.fresh_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/identity.db"
    async with running_service(
        DEFINITION, database_url=url, nats_url=nats_server.url, state_dir=tmp_path
    ) as svc:
        yield svc


@pytest.fixture
def stub(identity: RunningService) -> identity_pb2_grpc.IdentityServiceStub:
    return identity_pb2_grpc.IdentityServiceStub(identity.channel)
