from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

import closedloop_identity.main
from acquisition_helpers import AES_KEY, TOKEN, Env, app_ids, database
from closedloop_acquisition.main import DEFINITION
from loopkit.natsserver import NatsServer
from loopkit.testing import RunningService, own_nats_server, running_service

# Each test gets a tenant of its own, with its own pair of official accounts (safe mode and
# plaintext) configured for it, so tests share running services without seeing each other.
SLOTS = 60


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """This suite's own nats-server: its consumers never see other suites' events."""
    with own_nats_server(tmp_path_factory) as server:
        yield server


@dataclass
class Services:
    identity: RunningService
    acquisition: RunningService
    tenants: list[str]
    slots: Iterator[int]
    database_url: str


def wechat_apps(tenants: list[str]) -> list[dict[str, Any]]:
    apps: list[dict[str, Any]] = []
    for n, tenant in enumerate(tenants):
        safe, plain = app_ids(n)
        apps.append({"app_id": safe, "tenant_id": tenant, "token": TOKEN, "aes_key": AES_KEY})
        apps.append({"app_id": plain, "tenant_id": tenant, "token": TOKEN})
    return apps


@pytest_asyncio.fixture(loop_scope="session", scope="session", params=["sqlite", "postgres"])
async def services(
    request: pytest.FixtureRequest,
    nats_server: NatsServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Services]:
    """Identity and acquisition running in this process, on SQLite and on PostgreSQL."""
    tmp = tmp_path_factory.mktemp(f"acq-{request.param}")
    tenants = [f"t-{uuid.uuid4().hex[:10]}" for _ in range(SLOTS)]
    identity_url = await database(request, request.param, tmp, "identity")
    acquisition_url = await database(request, request.param, tmp, "acquisition")
    async with (
        running_service(
            closedloop_identity.main.DEFINITION,
            database_url=identity_url,
            nats_url=nats_server.url,
            state_dir=tmp,
        ) as identity,
        running_service(
            DEFINITION,
            database_url=acquisition_url,
            nats_url=nats_server.url,
            state_dir=tmp,
            identity_url=identity.grpc_target,
            wechat_worker_poll_s=0.1,
            wechat_apps=wechat_apps(tenants),
        ) as acquisition,
    ):
        yield Services(identity, acquisition, tenants, itertools.count(), acquisition_url)


@pytest_asyncio.fixture(loop_scope="session")
async def env(services: Services) -> Env:
    slot = next(services.slots)
    safe, plain = app_ids(slot)
    return Env(
        identity=services.identity,
        acquisition=services.acquisition,
        tenant=services.tenants[slot],
        app_id=safe,
        plain_app_id=plain,
    )
