"""Pytest fixtures shared by every test suite: a real nats-server, real databases, live services.

Loaded by the repository's root conftest.py (`pytest_plugins = ["loopkit_dev.testing"]`).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from closedloop.events.v1.envelope_pb2 import Envelope
from loopkit.callers import ALL_TENANTS, SERVICE_ROLE, KeyStore
from loopkit.events import decode_envelope, stream_for, subject_for
from loopkit.grpc_client import keyed_channel
from loopkit.runtime import ServiceDefinition, ServiceRuntime
from loopkit.telemetry import configure_telemetry
from loopkit_dev.natsserver import NatsServer, free_port

T = TypeVar("T")
DEFAULT_TEST_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/"
# Server and identity-call deadlines inside tests (production defaults are 10 s and 3 s).
BUSY_MACHINE_DEADLINE_S = 60.0


def postgres_required() -> bool:
    return os.environ.get("CLOSEDLOOP_REQUIRE_POSTGRES") == "1"


@contextmanager
def own_nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A fresh nats-server with empty streams, stopped afterwards.

    Durable consumers and streams outlive a test on a shared server: a consumer started later would
    first work through every earlier test's events (other tenants') before it sees its own, so a
    wait that holds alone runs out in a full run. Each suite that runs consumers therefore overrides
    `nats_server` with one of these at the scope of its running services.
    """
    server = NatsServer(tmp_path_factory.mktemp("nats"), port=free_port(), sync_always=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A nats-server of the tests' own, so tests can kill and restart it (see `own_nats_server`)."""
    with own_nats_server(tmp_path_factory) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="session")
async def nats_client(nats_server: NatsServer) -> AsyncIterator[Client]:
    nc = await nats.connect(nats_server.url)
    yield nc
    await nc.close()


async def _create_database(base_url: str, name: str) -> str:
    url = make_url(base_url)
    admin = create_async_engine(
        url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


async def _drop_database(base_url: str, name: str) -> None:
    admin = create_async_engine(
        make_url(base_url).set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
    )
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


async def _drop_databases(base_url: str, names: list[str], *, at_once: int = 8) -> None:
    """Drop the run's databases a few at a time: each DROP DATABASE waits for a checkpoint, and
    concurrent drops share one, so dropping them one by one costs minutes on a busy server."""
    gate = asyncio.Semaphore(at_once)

    async def drop(name: str) -> None:
        async with gate:
            await _drop_database(base_url, name)

    await asyncio.gather(*(drop(name) for name in names))


@dataclass
class PostgresServer:
    base_url: str
    created: list[str]

    async def fresh_database(self, prefix: str = "closedloop_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        url = await _create_database(self.base_url, name)
        self.created.append(name)
        return url


def _run_in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a loop of its own (from sync fixtures)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _probe(base: str) -> None:
    probe = create_async_engine(make_url(base).set(database="postgres"), poolclass=NullPool)
    try:
        async with probe.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await probe.dispose()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """PostgreSQL at CLOSEDLOOP_TEST_DATABASE_URL. Missing: skip, or fail when it is required."""
    base = os.environ.get("CLOSEDLOOP_TEST_DATABASE_URL", DEFAULT_TEST_PG)
    try:
        _run_in_thread(_probe(base))
    except Exception as exc:
        message = f"PostgreSQL unavailable at {base}: {exc}"
        if postgres_required():
            pytest.fail(message)
        pytest.skip(message)
    server = PostgresServer(base, [])
    yield server
    _run_in_thread(_drop_databases(base, server.created))


@dataclass
class ApiKeys:
    """The API key file of a test process: services refuse anonymous callers (loopkit.callers),
    so every service a test starts reads this file and calls the others with `services_key`
    (tenants `*`, role service), like `make run` and the chart provision them. Tests that check
    who may call add keys bound to tenants and a role with `tenant_key`."""

    store: KeyStore
    services_key: str

    @property
    def path(self) -> Path:
        return self.store.path

    def tenant_key(self, *tenants: str, role: str = "write", name: str = "test-caller") -> str:
        """A new key for `tenants` (`*` = every tenant) with `role` (read, write or service)."""
        return self.store.add(name, list(tenants), role)

    def env(self) -> dict[str, str]:
        """The environment a service started as its own process needs to accept these keys."""
        return {
            "CLOSEDLOOP_API_KEYS_FILE": str(self.path),
            "CLOSEDLOOP_API_TOKEN": self.services_key,
        }

    def headers(self, key: str | None = None) -> dict[str, str]:
        """HTTP headers presenting `key` (default: the services' key)."""
        return {"authorization": f"Bearer {key or self.services_key}"}

    def metadata(self, key: str | None = None) -> tuple[tuple[str, str], ...]:
        """gRPC call metadata presenting `key` (default: the services' key)."""
        return (("authorization", f"Bearer {key or self.services_key}"),)

    def channel(self, target: str, key: str | None = None) -> grpc.aio.Channel:
        """A channel whose calls present `key` (default: the services' key) unless a call
        names its own."""
        return keyed_channel(target, key or self.services_key)


_api_keys: list[ApiKeys] = []


def api_keys() -> ApiKeys:
    """This test process's key file (made on first use, removed when the process ends)."""
    if not _api_keys:
        folder = Path(tempfile.mkdtemp(prefix="closedloop-test-keys-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        store = KeyStore(folder / "api-keys.json")
        _api_keys.append(ApiKeys(store, store.add("services", [ALL_TENANTS], SERVICE_ROLE)))
    return _api_keys[0]


@dataclass
class RunningService:
    runtime: ServiceRuntime
    channel: grpc.aio.Channel
    grpc_target: str
    http_url: str
    # The key file the service reads (None: started with allow_anonymous_callers) and the key
    # `channel` presents; tests that check who may call make their own with keys.tenant_key.
    keys: ApiKeys | None = None
    api_key: str | None = None

    def new_channel(self, key: str | None = None) -> grpc.aio.Channel:
        """Another channel to the service presenting `key` (default: the one `channel` does)."""
        return keyed_channel(self.grpc_target, key or self.api_key)

    def headers(self, key: str | None = None) -> dict[str, str]:
        """HTTP headers presenting `key` (default: the key `channel` presents)."""
        key = key or self.api_key
        return {"authorization": f"Bearer {key}"} if key else {}


@asynccontextmanager
async def running_service(
    definition: ServiceDefinition,
    *,
    database_url: str,
    nats_url: str,
    state_dir: Path,
    **overrides: object,
) -> AsyncIterator[RunningService]:
    """The service in this process on free ports, migrated, started, and stopped afterwards.

    Deadlines are those of a busy test machine (a test overrides them to test a deadline): a call
    that is slow because every core is taken is not what these tests are about. Callers
    authenticate as in production: unless the test passes its own `api_keys_file` or
    `allow_anonymous_callers=True`, the service reads the process's test key file (`api_keys`),
    calls other services with the services' key, and `channel` presents that key.
    """
    configure_telemetry(definition.spec.name)
    values: dict[str, object] = {
        "outbox_poll_interval_s": 0.05,
        "default_deadline_s": BUSY_MACHINE_DEADLINE_S,
        "identity_timeout_s": BUSY_MACHINE_DEADLINE_S,
        **overrides,
    }
    keys: ApiKeys | None = None
    if "api_keys_file" not in overrides and not overrides.get("allow_anonymous_callers"):
        keys = api_keys()
        values["api_keys_file"] = keys.path
        values.setdefault("api_token", keys.services_key)
    token = values.get("api_token")
    secret = token.get_secret_value() if isinstance(token, SecretStr) else str(token or "")
    api_key = secret or None
    settings = definition.settings_cls(
        service=definition.spec.name,
        database_url=database_url,
        nats_url=nats_url,
        grpc_port=0,
        http_port=0,
        state_dir=state_dir,
        **values,  # type: ignore[arg-type]
    )
    runtime = definition.runtime(settings)
    await runtime.migrate()
    await runtime.start()
    target = f"127.0.0.1:{runtime.grpc.port}"
    channel = keyed_channel(target, api_key)
    try:
        assert runtime.http is not None
        http_url = f"http://127.0.0.1:{runtime.http.port}"
        yield RunningService(runtime, channel, target, http_url, keys, api_key)
    finally:
        await channel.close()
        await runtime.stop()


# How long `eventually` waits by default. It only bounds a failure: a condition that holds returns
# at once, so the bound is generous enough for a busy 2-core machine (CLOSEDLOOP_TEST_WAIT_S).
WAIT_S = float(os.environ.get("CLOSEDLOOP_TEST_WAIT_S", "60"))


async def eventually(
    check: object, timeout_s: float | None = None, interval_s: float = 0.05
) -> None:
    """Poll an async predicate until true; fail with the last value otherwise."""
    timeout_s = max(WAIT_S, timeout_s or 0.0)
    deadline = asyncio.get_running_loop().time() + timeout_s
    last: object = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()  # type: ignore[operator]
        if last:
            return
        await asyncio.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s (last: {last!r})")


async def answer_of(call: Awaitable[T]) -> T:
    """What `call` answers, started now and waited for as `eventually` waits (so a call that
    hangs fails the test instead of holding it), cancelled if it never answers."""
    running = asyncio.ensure_future(call)

    async def answered() -> bool:
        return running.done()

    try:
        await eventually(answered)
    finally:
        if not running.done():
            running.cancel()
    return running.result()


async def read_events(
    nc: Client, stream: str, subjects: str = ">", *, tenant_id: str | None = None
) -> list[Envelope]:
    """Every event on a stream (optionally one tenant's), read with an ephemeral consumer."""
    js = nc.jetstream()
    info = await js.stream_info(stream)
    envelopes: list[Envelope] = []
    if info.state.messages == 0:
        return envelopes
    sub = await js.pull_subscribe(
        subjects,
        stream=stream,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE),
    )
    try:
        while True:
            try:
                msgs = await sub.fetch(1000, timeout=0.5)
            except nats.errors.TimeoutError:
                break
            envelopes += [decode_envelope(m.data) for m in msgs]
            if msgs[-1].metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return [e for e in envelopes if tenant_id is None or e.tenant_id == tenant_id]


async def replay_event(nc: Client, env: Envelope, *, durable: str) -> None:
    """Publish `env` again under a new Nats-Msg-Id (as if past JetStream's duplicate window) and
    wait until the consumer `durable` has settled it: its inbox must make it a no-op."""
    js = nc.jetstream()
    stream = stream_for(env.producer)
    ack = await js.publish(
        subject_for(env.producer, env.type),
        env.SerializeToString(),
        stream=stream,
        headers={"Nats-Msg-Id": f"replay-{uuid.uuid4().hex}", "Closedloop-Type": env.type},
    )

    async def settled() -> bool:
        info = await js.consumer_info(stream, durable)
        return info.ack_floor is not None and info.ack_floor.stream_seq >= ack.seq

    await eventually(settled)
