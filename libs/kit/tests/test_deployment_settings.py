"""What the Helm chart relies on from the kit: settings that survive any password, an HTTP server
reachable over IPv4 and IPv6 when bound to every address, and JetStream streams whose operator
settings outlive a restart."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import httpx
import pytest
from nats.js import JetStreamContext

from loopkit import natsio
from loopkit.consumer import Subscription
from loopkit.events import SUBJECT_ROOT
from loopkit.ops_http import HttpServer, ops_app
from loopkit.runtime import consumer_batch_size
from loopkit.settings import ServiceSpec, Settings, load_settings


def test_a_password_with_braces_reaches_the_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "CLOSEDLOOP_DATABASE_URL", "postgresql+asyncpg://app:p{a}ss}{@db:5432/closedloop_{service}"
    )
    settings = load_settings(ServiceSpec("identity", 50051, 8081, "closedloop_identity"))
    assert settings.resolved_database_url() == (
        "postgresql+asyncpg://app:p{a}ss}{@db:5432/closedloop_identity"
    )


def test_the_state_dir_placeholder_is_still_resolved(tmp_path: Path) -> None:
    settings = Settings(service="x", state_dir=tmp_path, database_url="sqlite:///{state_dir}/a.db")
    assert settings.resolved_database_url() == f"sqlite+aiosqlite:///{tmp_path}/a.db"


@pytest.mark.parametrize(
    ("given", "used"),
    [
        (
            "postgresql://app:pw@db/closedloop_{service}",
            "postgresql+asyncpg://app:pw@db/closedloop_x",
        ),
        ("postgres://app@db:5433/c_{service}", "postgresql+asyncpg://app@db:5433/c_x"),
        ("postgresql+asyncpg://app@db/c_{service}", "postgresql+asyncpg://app@db/c_x"),
    ],
)
def test_a_postgresql_url_without_a_driver_gets_asyncpg(given: str, used: str) -> None:
    """The URL a managed database's console shows (no driver) starts the service, instead of
    failing at the first query for a driver the images do not carry."""
    assert Settings(service="x", database_url=given).resolved_database_url() == used


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("postgresql+psycopg2://app@db/c", "postgresql\\+asyncpg"),
        ("mysql://app@db/c", "PostgreSQL or SQLite"),
        ("closedloop_identity", "PostgreSQL or SQLite"),
    ],
)
def test_a_database_url_the_services_cannot_use_is_refused_at_start(
    given: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        Settings(service="x", database_url=given)


def test_a_consumers_batch_size_comes_from_its_name_the_setting_or_its_subscription(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A subscription's own batch size holds unless CLOSEDLOOP_CONSUMER_BATCH_SIZE is set (then
    it applies to every consumer) or CLOSEDLOOP_CONSUMER_BATCH_SIZES names the consumer."""
    spec = ServiceSpec("conversion", 50053, 8083, "closedloop_conversion")
    own = Subscription("leads", "ACQUISITION", ["closedloop.acquisition.>"], batch_size=500)
    plain = Subscription("other", "IDENTITY", ["closedloop.identity.>"])
    for name in ("CLOSEDLOOP_CONSUMER_BATCH_SIZE", "CLOSEDLOOP_CONSUMER_BATCH_SIZES"):
        monkeypatch.delenv(name, raising=False)
    defaults = load_settings(spec)
    assert (consumer_batch_size(defaults, own), consumer_batch_size(defaults, plain)) == (500, 100)
    monkeypatch.setenv("CLOSEDLOOP_CONSUMER_BATCH_SIZE", "10")
    set_all = load_settings(spec)
    assert (consumer_batch_size(set_all, own), consumer_batch_size(set_all, plain)) == (10, 10)
    monkeypatch.setenv("CLOSEDLOOP_CONSUMER_BATCH_SIZES", '{"leads": 7}')
    by_name = load_settings(spec)
    assert (consumer_batch_size(by_name, own), consumer_batch_size(by_name, plain)) == (7, 10)
    monkeypatch.setenv("CLOSEDLOOP_CONVERSION_CONSUMER_BATCH_SIZES", '{"leads": 3}')
    assert consumer_batch_size(load_settings(spec), own) == 3  # the service's own variable


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
async def test_http_bound_to_every_address_answers_on_ipv4_and_ipv6(host: str) -> None:
    async def ready() -> None:
        return None

    server = HttpServer(ops_app("probe", ready), host, 0)
    await server.start()
    try:
        targets = ["127.0.0.1"] + (["[::1]"] if _ipv6_available() else [])
        async with httpx.AsyncClient(trust_env=False) as client:
            for target in targets:
                reply = await client.get(f"http://{target}:{server.port}/healthz")
                assert reply.status_code == 200, target
    finally:
        await server.stop()
    if not _ipv6_available():
        pytest.fail("this machine has no IPv6 loopback: only the IPv4 half was checked")


async def test_a_specific_host_is_bound_alone() -> None:
    async def ready() -> None:
        return None

    server = HttpServer(ops_app("probe", ready), "127.0.0.1", 0)
    await server.start()
    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            assert (await client.get(f"http://127.0.0.1:{server.port}/healthz")).status_code == 200
            if _ipv6_available():
                with pytest.raises(httpx.ConnectError):
                    await client.get(f"http://[::1]:{server.port}/healthz")
    finally:
        await server.stop()


async def test_an_operators_stream_settings_survive_a_restart(js: JetStreamContext) -> None:
    producer = f"kit{uuid.uuid4().hex[:10]}"
    await natsio.ensure_service_streams(js, producer, replicas=1)
    name = producer.upper()
    try:
        # What `nats stream edit` does: a retention and a description of the operator's choice.
        config = (await js.stream_info(name)).config
        config.max_age = 7 * 24 * 3600.0
        config.description = "kept 7 days (ops ticket 42)"
        await js.update_stream(config)

        await natsio.ensure_service_streams(js, producer, replicas=1)  # the next start

        after = (await js.stream_info(name)).config
        assert after.max_age == 7 * 24 * 3600.0
        assert after.description == "kept 7 days (ops ticket 42)"
        assert after.subjects == [f"{SUBJECT_ROOT}.{producer}.>"]
    finally:
        await js.delete_stream(name)


async def test_a_new_subject_is_added_without_touching_the_rest(js: JetStreamContext) -> None:
    name = f"KIT{uuid.uuid4().hex[:10].upper()}"
    await natsio.ensure_stream(js, name, [f"{name}.a"])
    try:
        config = (await js.stream_info(name)).config
        config.max_age = 2 * 24 * 3600.0
        await js.update_stream(config)
        await natsio.ensure_stream(js, name, [f"{name}.a", f"{name}.b"])
        after = (await js.stream_info(name)).config
        assert after.subjects == [f"{name}.a", f"{name}.b"]
        assert after.max_age == 2 * 24 * 3600.0
    finally:
        await js.delete_stream(name)
