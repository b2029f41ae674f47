"""`make run` as a newcomer uses it: the platform comes up on the bundled NATS and SQLite, serves
identity, publishes its events on JetStream, stops cleanly and keeps its state for the next run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import grpc
import nats
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1 import identity_events_pb2 as ev
from closedloop.identity.v1 import identity_pb2 as pb
from closedloop.identity.v1 import identity_pb2_grpc
from loopkit.events import unpack
from loopkit.natsserver import free_port
from loopkit.servicelist import listed_services
from loopkit.testing import eventually, read_events

ROOT = Path(__file__).resolve().parent.parent
TENANT = "acme"


@pytest.fixture
def platform_env(tmp_path: Path) -> dict[str, str]:
    """Free ports for NATS and every listed service: never collides with a real `make run`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOSEDLOOP_")}
    env["CLOSEDLOOP_STATE_DIR"] = str(tmp_path / "state")
    env["CLOSEDLOOP_NATS_PORT"] = str(free_port())
    for service in listed_services(ROOT / "services.toml"):
        prefix = f"CLOSEDLOOP_{service.name.upper()}"
        env[f"{prefix}_GRPC_PORT"] = str(free_port())
        env[f"{prefix}_HTTP_PORT"] = str(free_port())
    return env


def _ports(env: dict[str, str]) -> list[int]:
    return [int(v) for k, v in env.items() if k.endswith("_PORT")]


@contextmanager
def make_run(env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """The platform as `make run` starts it, until it printed its table; SIGTERM on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopkit.cli", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            seen.append(line)
            if "Stop: Ctrl-C" in line:
                break
            assert time.monotonic() < deadline, "".join(seen)
        else:
            pytest.fail("make run exited before it was ready:\n" + "".join(seen))
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _identity(channel: grpc.aio.Channel) -> Any:
    return identity_pb2_grpc.IdentityServiceStub(channel)  # type: ignore[no-untyped-call]


def _openid(value: str) -> c.Identity:
    return c.Identity(kind=c.IDENTITY_KIND_WECHAT_OPENID, scope="wx-app", value=value)


def _unionid(value: str) -> c.Identity:
    return c.Identity(kind=c.IDENTITY_KIND_WECHAT_UNIONID, value=value)


async def test_make_run_serves_identity_and_publishes_merges(platform_env: dict[str, str]) -> None:
    grpc_port = int(platform_env["CLOSEDLOOP_IDENTITY_GRPC_PORT"])
    nats_url = f"nats://127.0.0.1:{platform_env['CLOSEDLOOP_NATS_PORT']}"
    with make_run(platform_env) as proc:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest()
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
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
        assert proc.wait(30) == 0
    assert [p for p in _ports(platform_env) if _listening(p)] == []

    # A second run reuses the state: the customer is still there. Ctrl-C stops it.
    with make_run(platform_env) as proc:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = _identity(channel)
            got = await stub.GetCustomer(
                pb.GetCustomerRequest(tenant_id=TENANT, customer_id=first.customer.customer_id)
            )
            assert got.customer.customer_id == survivor
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    assert [p for p in _ports(platform_env) if _listening(p)] == []
