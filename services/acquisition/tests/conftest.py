from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

import closedloop_identity.main
from acquisition_helpers import AES_KEY, TOKEN, Env, app_ids, database
from closedloop_acquisition.main import DEFINITION
from loopkit.natsserver import NatsServer
from loopkit.testing import RunningService, running_service

# Each test gets a tenant of its own, with its own pair of official accounts (safe mode and
# plaintext) configured for it, so tests share running services without seeing each other.
SLOTS = 60


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


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _ensure_chromium() -> str:
    """Debian's chromium; installed here when missing and we are root (CI), else a failure:
    the page's browser tests must never quietly skip."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

        def apt(*args: str, check: bool = True) -> int:
            done = subprocess.run(["apt-get", *args], env=env, check=check, capture_output=True)
            return done.returncode

        if apt("install", "-y", "chromium", check=False):
            apt("update")  # a fresh machine has no package lists yet
            apt("install", "-y", "chromium")
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    return CHROMIUM


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium driven by Playwright (never `playwright install`: Debian's binary)."""
    executable = _ensure_chromium()
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()
