from __future__ import annotations

import itertools
import json
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

import closedloop_gateway.main
import closedloop_identity.main
from acquisition_helpers import (
    AES_KEY,
    SESSION_SECRET,
    TOKEN,
    Env,
    WechatSlot,
    app_ids,
    database,
)
from closedloop_acquisition.main import DEFINITION
from gateway_helpers import Emulator, emulator, gateway_overrides
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import RunningService, own_nats_server, running_service

# Each test gets a tenant of its own, with its own pair of official accounts (safe mode and
# plaintext) configured for it, so tests share running services without seeing each other.
SLOTS = 200  # more than the suite's tests that take an `env`; the assertion below says so


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


def wechat_accounts(tenants: list[str]) -> str:
    """The account registry (CLOSEDLOOP_ACCOUNTS) with each tenant's two official accounts."""
    apps: list[dict[str, Any]] = []
    for n, tenant in enumerate(tenants):
        safe, plain = app_ids(n)
        common = {"tenant_id": tenant, "token": TOKEN}
        apps.append({**common, "app_id": safe, "app_secret": f"s-{safe}", "aes_key": AES_KEY})
        apps.append({**common, "app_id": plain, "app_secret": f"s-{plain}", "default": True})
    return json.dumps({"official_accounts": apps})


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
            accounts=wechat_accounts(tenants),
        ) as acquisition,
    ):
        yield Services(identity, acquisition, tenants, itertools.count(), acquisition_url)


@pytest_asyncio.fixture(loop_scope="session")
async def env(services: Services) -> Env:
    slot = next(services.slots)
    assert slot < SLOTS, "more acquisition tests than SLOTS: raise SLOTS"
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


# --- acquisition with the WeChat gateway and its emulator ------------------------------------

# Tenants with accounts in the gateway. The emulator outlives both database runs, so each test
# of either run gets its own slot (its own official account, corp and default OAuth openid).
GATEWAY_SLOTS = 40
_gateway_slots = itertools.count()


@dataclass
class WechatServices:
    identity: RunningService
    acquisition: RunningService
    gateway: RunningService
    wechat: Emulator
    slots: Iterator[int]


def gateway_accounts(slots: int) -> str:
    official, corps = [], []
    for n in range(slots):
        tenant = f"t-wx-{n}"
        official.append(
            {
                "tenant_id": tenant,
                "app_id": f"wxedge{n:04d}",
                "app_secret": f"secret-of-wxedge{n:04d}",
                "token": TOKEN,
                "aes_key": AES_KEY,
                "default": True,
            }
        )
        corps.append(
            {
                "tenant_id": tenant,
                "corp_id": f"wwedge{n:04d}",
                "contact_secret": f"secret-of-wwedge{n:04d}",
                "agent_id": "1000002",
            }
        )
    return json.dumps({"official_accounts": official, "wecom_corps": corps})


@pytest.fixture(scope="session")
def wechat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The WeChat API emulator (the gateway's), as its own process on a free port."""
    with emulator(tmp_path_factory.mktemp("emulator")) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session", scope="session", params=["sqlite", "postgres"])
async def wechat_services(
    request: pytest.FixtureRequest,
    nats_server: NatsServer,
    wechat: Emulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[WechatServices]:
    """Identity, the gateway (pointed at the emulator) and acquisition using it."""
    tmp = tmp_path_factory.mktemp(f"acq-wx-{request.param}")
    urls = [await database(request, request.param, tmp, name) for name in ("id", "gw", "acq")]
    # One registry for both: the gateway calls WeChat with it, acquisition verifies callbacks.
    accounts = gateway_accounts(GATEWAY_SLOTS)
    gateway_settings = {**gateway_overrides(wechat.url), "accounts": accounts}
    async with (
        running_service(
            closedloop_identity.main.DEFINITION,
            database_url=urls[0],
            nats_url=nats_server.url,
            state_dir=tmp,
        ) as identity,
        running_service(
            closedloop_gateway.main.DEFINITION,
            database_url=urls[1],
            nats_url=nats_server.url,
            state_dir=tmp,
            **gateway_settings,
        ) as gateway,
        running_service(
            DEFINITION,
            database_url=urls[2],
            nats_url=nats_server.url,
            state_dir=tmp,
            identity_url=identity.grpc_target,
            gateway_url=gateway.grpc_target,
            session_secret=SESSION_SECRET,
            wechat_worker_poll_s=0.1,
            contact_way_release_interval_s=0.2,
            accounts=accounts,
        ) as acquisition,
    ):
        yield WechatServices(identity, acquisition, gateway, wechat, _gateway_slots)


@pytest_asyncio.fixture(loop_scope="session")
async def wx(wechat_services: WechatServices) -> WechatSlot:
    n = next(wechat_services.slots)
    assert n < GATEWAY_SLOTS, "more gateway tests than GATEWAY_SLOTS"
    env = Env(
        identity=wechat_services.identity,
        acquisition=wechat_services.acquisition,
        tenant=f"t-wx-{n}",
        app_id=f"wxedge{n:04d}",
        plain_app_id="",
    )
    return WechatSlot(
        env, env.app_id, f"wwedge{n:04d}", wechat_services.wechat, wechat_services.gateway
    )
