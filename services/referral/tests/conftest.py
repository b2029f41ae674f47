from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from nats.aio.client import Client

import closedloop_identity.main
from closedloop_referral.main import DEFINITION
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import PostgresServer, own_nats_server, running_service
from referral_helpers import BURST_THRESHOLD, Env, Services


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """This suite's own nats-server: its consumers never see other suites' events."""
    with own_nats_server(tmp_path_factory) as server:
        yield server


async def _database(request: pytest.FixtureRequest, backend: str, tmp: Path, name: str) -> str:
    if backend == "postgres":
        pg: PostgresServer = request.getfixturevalue("postgres")
        return await pg.fresh_database()
    return f"sqlite+aiosqlite:///{tmp}/{name}.db"


@pytest_asyncio.fixture(loop_scope="session", scope="session", params=["sqlite", "postgres"])
async def services(
    request: pytest.FixtureRequest,
    nats_server: NatsServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Services]:
    """Identity and referral running in this process, on SQLite and on PostgreSQL."""
    tmp = tmp_path_factory.mktemp(f"ref-{request.param}")
    identity_url = await _database(request, request.param, tmp, "identity")
    referral_url = await _database(request, request.param, tmp, "referral")
    async with (
        running_service(
            closedloop_identity.main.DEFINITION,
            database_url=identity_url,
            nats_url=nats_server.url,
            state_dir=tmp,
        ) as identity,
        running_service(
            DEFINITION,
            database_url=referral_url,
            nats_url=nats_server.url,
            state_dir=tmp,
            identity_url=identity.grpc_target,
            burst_threshold=BURST_THRESHOLD,
            sweep_interval_s=0.2,
            public_base_url="https://r.example.com",
        ) as referral,
    ):
        yield Services(identity, referral, itertools.count())


@pytest_asyncio.fixture(loop_scope="session")
async def env(services: Services, nats_client: Client) -> Env:
    """A tenant of its own per test, so tests share the running services without interfering."""
    return Env(services.identity, services.referral, f"t-{uuid.uuid4().hex[:10]}", nats_client)
