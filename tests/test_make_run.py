"""`make run` as a newcomer uses it: the platform comes up on the bundled NATS and SQLite, serves
identity, publishes its events on JetStream, stops cleanly and keeps its state for the next run."""

from __future__ import annotations

import signal
import socket
from pathlib import Path
from typing import Any, cast

import grpc
import nats
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import platform_harness as harness
from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1 import identity_events_pb2 as ev
from closedloop.identity.v1 import identity_pb2 as pb
from closedloop.identity.v1 import identity_pb2_grpc
from loopkit.events import unpack
from loopkit.grpc_client import keyed_channel
from loopkit.servicelist import listed_services
from loopkit_dev.testing import eventually, read_events

TENANT = "acme"


@pytest.fixture
def platform_env(tmp_path: Path) -> dict[str, str]:
    return harness.platform_env(tmp_path / "state")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _identity(channel: grpc.aio.Channel) -> Any:
    return identity_pb2_grpc.IdentityServiceStub(channel)  # type: ignore[no-untyped-call]


def _openid(value: str) -> c.Identity:
    return c.Identity(kind=c.IDENTITY_KIND_WECHAT_OPENID, scope="wx-app", value=value)


def _unionid(value: str) -> c.Identity:
    # As WeChat OAuth hands it over: verified, so it may merge (a merely claimed one never does).
    return c.Identity(kind=c.IDENTITY_KIND_WECHAT_UNIONID, value=value, verified=True)


async def test_make_run_serves_identity_and_publishes_merges(platform_env: dict[str, str]) -> None:
    grpc_port = int(platform_env["CLOSEDLOOP_IDENTITY_GRPC_PORT"])
    nats_url = f"nats://127.0.0.1:{platform_env['CLOSEDLOOP_NATS_PORT']}"
    with harness.make_run(platform_env) as proc:
        # Every listed service is up and serving, not only identity.
        for service in listed_services(harness.ROOT / "services.toml"):
            target = harness.grpc_target(platform_env, service.name)
            async with grpc.aio.insecure_channel(target) as channel:
                health = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest()
                )
                assert health.status == health_pb2.HealthCheckResponse.SERVING, service.name
        # Callers need an API key by default: make run made a development key for every tenant.
        key = harness.developer_key(platform_env)
        async with keyed_channel(f"127.0.0.1:{grpc_port}", key) as channel:
            stub = _identity(channel)

            def resolve(*ids: c.Identity) -> pb.ResolveCustomerRequest:
                return pb.ResolveCustomerRequest(tenant_id=TENANT, identities=list(ids))

            other = await stub.ResolveCustomer(resolve(_unionid("u-other")))
            first = await stub.ResolveCustomer(resolve(_openid("o-1")))
            second = await stub.ResolveCustomer(resolve(_openid("o-1")))
            assert first.customer.customer_id == second.customer.customer_id
            merged = await stub.ResolveCustomer(resolve(_openid("o-1"), _unionid("u-other")))
            assert list(merged.merged_ids) == [first.customer.customer_id]
            survivor = merged.customer.customer_id
            assert survivor == other.customer.customer_id

        nc = await nats.connect(nats_url)
        try:

            async def merged_events() -> list[ev.CustomerMerged]:
                events = await read_events(nc, "IDENTITY", tenant_id=TENANT)
                found = [e for e in events if e.type == "customer.merged"]
                return [cast(ev.CustomerMerged, unpack(e, ev.CustomerMerged)) for e in found]

            await eventually(merged_events)
            [event] = await merged_events()
            assert (event.survivor_id, event.merged_id) == (survivor, first.customer.customer_id)
        finally:
            await nc.close()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(300) == 0
    assert harness.processes_of(platform_env) == []

    # A second run reuses the state: the customer is still there. Ctrl-C stops it.
    with harness.make_run(platform_env) as proc:
        # A new run makes a new development key and revokes the last one.
        assert harness.developer_key(platform_env) != key
        async with keyed_channel(f"127.0.0.1:{grpc_port}", key) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await _identity(channel).GetCustomer(
                    pb.GetCustomerRequest(tenant_id=TENANT, customer_id=survivor)
                )
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        key = harness.developer_key(platform_env)
        async with keyed_channel(f"127.0.0.1:{grpc_port}", key) as channel:
            stub = _identity(channel)
            got = await stub.GetCustomer(
                pb.GetCustomerRequest(tenant_id=TENANT, customer_id=first.customer.customer_id)
            )
            assert got.customer.customer_id == survivor
        proc.send_signal(signal.SIGINT)
        assert proc.wait(300) == 0
    assert harness.processes_of(platform_env) == []


async def test_make_run_prints_a_development_key_callers_need(
    platform_env: dict[str, str],
) -> None:
    """Authentication is the default: the key file is in the state directory (only hashes)."""
    keys_file = Path(platform_env["CLOSEDLOOP_STATE_DIR"]) / "api-keys.json"
    env = platform_env
    printed: list[str] = []
    target = harness.grpc_target(env, "identity")
    request = pb.ResolveCustomerRequest(tenant_id=TENANT, identities=[_unionid("u-keyed")])
    with harness.make_run(env, printed):
        (line,) = [line for line in printed if "API key (development" in line]
        key = line.split(":", 1)[1].strip()
        assert key.startswith("clk_") and key.split(".", 1)[1] not in keys_file.read_text()
        async with grpc.aio.insecure_channel(target) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await _identity(channel).ResolveCustomer(request)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            answer = await _identity(channel).ResolveCustomer(
                request, metadata=[("authorization", f"Bearer {key}")]
            )
            assert answer.customer.customer_id
