"""Every service's `/openapi.json` is checked against the service itself by schemathesis: requests
generated from the document (valid and invalid ones) are sent over real HTTP and every check runs
(no 5xx, only documented statuses, content types, headers and bodies, invalid data rejected, valid
data not refused with 400, undeclared methods 405, and authentication enforced where declared).

The services run in a thread of their own (their own event loop), on SQLite and on PostgreSQL,
with one official account and one WeCom corp configured, so generated callbacks reach the
signature checks and the parsers instead of stopping at "unknown account"; a form goes to a page
that does not exist, so its body is parsed and checked before the 404. The number of generated
requests per operation is bounded (`MAX_EXAMPLES`): about a minute per database on a busy 2-core
machine.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import CHECKS, load_all_checks

import closedloop_acquisition.main
import closedloop_conversion.main
import closedloop_gateway.main
import closedloop_identity.main
import closedloop_referral.main
import closedloop_retention.main
from loopkit.callers import KeyStore
from loopkit.runtime import ServiceDefinition
from loopkit_dev.testing import PostgresServer, RunningService, own_nats_server, running_service

MAX_EXAMPLES = 25
TENANT = "fuzz"
APP_ID = "wxfuzz0000000001"
CORP_ID = "wwfuzz0000000001"
TOKEN = "fuzz-callback-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
# The account registry (CLOSEDLOOP_ACCOUNTS): one official account and one corp, each with its
# callback token and key (what acquisition and conversion verify callbacks with).
ACCOUNTS = json.dumps(
    {
        "official_accounts": [
            {
                "tenant_id": TENANT,
                "app_id": APP_ID,
                "app_secret": "fuzz-app-secret",
                "token": TOKEN,
                "aes_key": AES_KEY,
            }
        ],
        "wecom_corps": [
            {
                "tenant_id": TENANT,
                "corp_id": CORP_ID,
                "contact_secret": "fuzz-contact-secret",
                "token": TOKEN,
                "aes_key": AES_KEY,
            }
        ],
    }
)

# Callers need API keys here as in production: the services' own, and the fuzzer's.
KEYS_FILE = "api-keys.json"

load_all_checks()
# `--checks all`: every check schemathesis has (max_response_time is a setting, not a check).
ALL_CHECKS = [check for check in CHECKS.get_all() if not isinstance(check, type)]


@dataclass
class Platform:
    """The services' HTTP base URLs, by service name, and the key the fuzzer calls with."""

    caller_key: str
    urls: dict[str, str] = field(default_factory=dict)


def _start_in_thread(
    tmp: Path, nats_url: str, pg: PostgresServer | None
) -> tuple[Platform, Callable[[], None]]:
    """The services in a thread with an event loop of their own (the tests call them over HTTP
    from this one); returns them and how to stop them."""
    keys = KeyStore(tmp / KEYS_FILE)
    services_key = keys.add("services", ["*"], "service")
    platform = Platform(caller_key=keys.add("fuzzer", ["*"], "write"))
    ready = threading.Event()
    failure: list[BaseException] = []
    holder: dict[str, Any] = {}

    async def run() -> None:
        stop = asyncio.Event()
        holder["loop"], holder["stop"] = asyncio.get_running_loop(), stop
        try:
            async with ServicesUnderTest(tmp, nats_url, pg, services_key) as running:
                platform.urls.update({name: svc.http_url for name, svc in running.items()})
                ready.set()
                await stop.wait()
        except BaseException as exc:
            failure.append(exc)
            ready.set()

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    ready.wait()
    if failure:
        raise failure[0]

    def stop() -> None:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join()

    return platform, stop


def _sqlite(tmp: Path, name: str) -> str:
    return f"sqlite+aiosqlite:///{tmp / name}.db"


class ServicesUnderTest:
    """Every service, started in order (identity first: the others resolve through it)."""

    def __init__(
        self, tmp: Path, nats_url: str, pg: PostgresServer | None, services_key: str
    ) -> None:
        self.tmp, self.nats_url, self.pg, self.services_key = tmp, nats_url, pg, services_key
        self.stack = AsyncExitStack()

    async def _start(self, definition: ServiceDefinition, **overrides: Any) -> RunningService:
        name = definition.spec.name
        return await self.stack.enter_async_context(
            running_service(
                definition,
                database_url=(
                    await self.pg.fresh_database() if self.pg else _sqlite(self.tmp, name)
                ),
                nats_url=self.nats_url,
                state_dir=self.tmp,
                api_keys_file=self.tmp / KEYS_FILE,
                api_token=self.services_key,
                **overrides,
            )
        )

    async def __aenter__(self) -> dict[str, RunningService]:
        identity = await self._start(closedloop_identity.main.DEFINITION)
        near = {"identity_url": identity.grpc_target}
        return {
            "identity": identity,
            "acquisition": await self._start(
                closedloop_acquisition.main.DEFINITION, accounts=ACCOUNTS, **near
            ),
            "conversion": await self._start(
                closedloop_conversion.main.DEFINITION, accounts=ACCOUNTS, **near
            ),
            "retention": await self._start(closedloop_retention.main.DEFINITION, **near),
            "referral": await self._start(closedloop_referral.main.DEFINITION, **near),
            "gateway": await self._start(closedloop_gateway.main.DEFINITION),
        }

    async def __aexit__(self, *exc: object) -> None:
        await self.stack.aclose()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    """The services on SQLite, then on PostgreSQL (a fresh database each)."""
    pg = request.getfixturevalue("postgres") if request.param == "postgres" else None
    tmp = tmp_path_factory.mktemp("fuzz")
    with own_nats_server(tmp_path_factory) as nats:
        started, stop = _start_in_thread(tmp, nats.url, pg)
        try:
            yield started
        finally:
            stop()


def _document(definition: ServiceDefinition, **overrides: Any) -> dict[str, Any]:
    """The service's OpenAPI document, built without starting it (the same app it serves)."""

    async def build() -> dict[str, Any]:
        runtime = definition.runtime(
            definition.settings_cls(
                service=definition.spec.name,
                database_url="sqlite+aiosqlite:///:memory:",
                **overrides,
            )
        )
        try:
            return runtime.http_app().openapi()
        finally:
            await runtime.engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, build()).result()


DEFINITIONS: dict[str, tuple[ServiceDefinition, dict[str, Any]]] = {
    "identity": (closedloop_identity.main.DEFINITION, {}),
    "acquisition": (closedloop_acquisition.main.DEFINITION, {"accounts": ACCOUNTS}),
    "conversion": (closedloop_conversion.main.DEFINITION, {"accounts": ACCOUNTS}),
    "retention": (closedloop_retention.main.DEFINITION, {}),
    "referral": (closedloop_referral.main.DEFINITION, {}),
    "gateway": (closedloop_gateway.main.DEFINITION, {}),
}
SCHEMAS = {
    name: schemathesis.openapi.from_dict(_document(definition, **overrides))
    for name, (definition, overrides) in DEFINITIONS.items()
}
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    # The same cases every run (a failure reproduces), and no example database in the tree.
    derandomize=True,
    database=None,
)


def _validate(platform: Platform, service: str, case: Case) -> None:
    case.call_and_validate(
        base_url=platform.urls[service],
        # Capitalised as the document's security scheme names it: the auth checks then send
        # their probes without it.
        headers={"Authorization": f"Bearer {platform.caller_key}"},
        checks=ALL_CHECKS,
        timeout=60,
    )


def test_each_service_serves_the_document_checked_here(platform: Platform) -> None:
    for name, schema in SCHEMAS.items():
        served = httpx.get(f"{platform.urls[name]}/openapi.json", timeout=60).json()
        assert served == schema.raw_schema, name


@SCHEMAS["identity"].parametrize()
@FUZZ_SETTINGS
def test_identity_http_matches_its_document(platform: Platform, case: Case) -> None:
    _validate(platform, "identity", case)


@SCHEMAS["acquisition"].parametrize()
@FUZZ_SETTINGS
def test_acquisition_http_matches_its_document(platform: Platform, case: Case) -> None:
    _validate(platform, "acquisition", case)


@SCHEMAS["conversion"].parametrize()
@FUZZ_SETTINGS
def test_conversion_http_matches_its_document(platform: Platform, case: Case) -> None:
    _validate(platform, "conversion", case)


@SCHEMAS["retention"].parametrize()
@FUZZ_SETTINGS
def test_retention_http_matches_its_document(platform: Platform, case: Case) -> None:
    _validate(platform, "retention", case)


@SCHEMAS["referral"].parametrize()
@FUZZ_SETTINGS
def test_referral_http_matches_its_document(platform: Platform, case: Case) -> None:
    _validate(platform, "referral", case)


@SCHEMAS["gateway"].parametrize()
@FUZZ_SETTINGS
def test_gateway_http_matches_its_document(platform: Platform, case: Case) -> None:
    _validate(platform, "gateway", case)
