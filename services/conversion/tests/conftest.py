from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

import closedloop_identity.main
from closedloop.conversion.v1 import conversion_pb2_grpc
from closedloop.identity.v1 import identity_pb2_grpc
from closedloop_conversion.main import DEFINITION
from conversion_helpers import accounts
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import PostgresServer, RunningService, own_nats_server, running_service


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """This suite's own nats-server: its consumers never see other suites' events."""
    with own_nats_server(tmp_path_factory) as server:
        yield server


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def identity(
    nats_server: NatsServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningService]:
    """The real identity service, in this process, shared by the conversion tests."""
    state = tmp_path_factory.mktemp("identity")
    async with running_service(
        closedloop_identity.main.DEFINITION,
        database_url=f"sqlite+aiosqlite:///{state}/identity.db",
        nats_url=nats_server.url,
        state_dir=state,
    ) as svc:
        yield svc


async def _database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        pg: PostgresServer = request.getfixturevalue("postgres")
        return await pg.fresh_database()
    return f"sqlite+aiosqlite:///{tmp_path}/conversion.db"


@pytest_asyncio.fixture(loop_scope="session", params=["sqlite", "postgres"])
async def conversion(
    request: pytest.FixtureRequest,
    nats_server: NatsServer,
    identity: RunningService,
    tenant: str,
    tmp_path: Path,
) -> AsyncIterator[RunningService]:
    """The conversion service on SQLite and on PostgreSQL, its WeCom corp serving `tenant`."""
    async with running_service(
        DEFINITION,
        database_url=await _database(request, tmp_path),
        nats_url=nats_server.url,
        state_dir=tmp_path,
        identity_url=identity.grpc_target,
        accounts=accounts(tenant),
        sandbox_log=tmp_path / "sent.jsonl",
        # Idle consumers are mid-fetch at the end of a test: do not wait out their poll.
        shutdown_grace_s=0.5,
    ) as svc:
        yield svc


@pytest.fixture
def stub(conversion: RunningService) -> conversion_pb2_grpc.ConversionServiceStub:
    return conversion_pb2_grpc.ConversionServiceStub(conversion.channel)  # type: ignore[no-untyped-call]


@pytest.fixture
def identity_stub(identity: RunningService) -> identity_pb2_grpc.IdentityServiceStub:
    return identity_pb2_grpc.IdentityServiceStub(identity.channel)  # type: ignore[no-untyped-call]
