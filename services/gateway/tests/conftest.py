from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
import pytest_asyncio

from closedloop.gateway.v1 import gateway_pb2_grpc
from closedloop_gateway.main import DEFINITION
from gateway_helpers import Emulator, emulator, gateway_overrides
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import PostgresServer, RunningService, own_nats_server, running_service


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """This suite's own nats-server: its consumers never see other suites' events."""
    with own_nats_server(tmp_path_factory) as server:
        yield server


@pytest.fixture(scope="session")
def wechat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The WeChat API emulator as its own process, shared by the gateway tests."""
    with emulator(tmp_path_factory.mktemp("emulator")) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session", scope="session", params=["sqlite", "postgres"])
async def gateway(
    request: pytest.FixtureRequest,
    nats_server: NatsServer,
    wechat: Emulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningService]:
    """The gateway in this process against the emulator, on SQLite and on PostgreSQL."""
    tmp = tmp_path_factory.mktemp(f"gw-{request.param}")
    if request.param == "postgres":
        pg: PostgresServer = request.getfixturevalue("postgres")
        url = await pg.fresh_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp}/gateway.db"
    async with running_service(
        DEFINITION,
        database_url=url,
        nats_url=nats_server.url,
        state_dir=tmp,
        **gateway_overrides(wechat.url),
    ) as service:
        yield service


@pytest.fixture
def stub(gateway: RunningService) -> gateway_pb2_grpc.GatewayServiceStub:
    return gateway_pb2_grpc.GatewayServiceStub(gateway.channel)  # type: ignore[no-untyped-call]


def code_of(exc: grpc.aio.AioRpcError) -> grpc.StatusCode:
    return exc.code()
