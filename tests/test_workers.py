"""CLOSEDLOOP_WORKERS: a service run as a pod runs it (`python -m closedloop_identity`) with two
worker processes on PostgreSQL serves gRPC (ResolveCustomer) from both on one port, drains both
on SIGTERM, stops as a whole when a worker dies, and refuses two workers on SQLite."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

import platform_harness as harness
from closedloop.common.v1 import common_pb2
from closedloop.identity.v1 import identity_pb2, identity_pb2_grpc
from loopkit.workers import WORKER_HEALTH_PREFIX
from loopkit_dev.natsserver import NatsServer, free_port
from loopkit_dev.testing import PostgresServer, api_keys, eventually


@dataclass
class Supervised:
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    log: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.env['CLOSEDLOOP_GRPC_PORT']}"

    def workers(self) -> list[int]:
        """The pids of the supervisor's children (the workers)."""
        pid = self.process.pid
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return [int(p) for p in text.split()]


def _env(tmp_path: Path, database: str, nats: NatsServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOSEDLOOP_")}
    env.update(
        CLOSEDLOOP_DATABASE_URL=database,
        CLOSEDLOOP_NATS_URL=nats.url,
        CLOSEDLOOP_STATE_DIR=str(tmp_path),
        CLOSEDLOOP_GRPC_PORT=str(free_port()),
        CLOSEDLOOP_HTTP_PORT=str(free_port()),
        CLOSEDLOOP_LOG_FORMAT="text",
        CLOSEDLOOP_WORKERS="2",
        **api_keys().env(),
    )
    return env


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python -m closedloop_identity`, as a pod runs it."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "closedloop_identity"],
            cwd=harness.ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest_asyncio.fixture(loop_scope="session")
async def identity(
    tmp_path: Path, postgres: PostgresServer, nats_server: NatsServer
) -> AsyncIterator[Supervised]:
    env = _env(tmp_path, await postgres.fresh_database("closedloop_workers"), nats_server)
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "loopkit.cli", "migrate", "identity"],
        cwd=harness.ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    log = tmp_path / "identity.log"
    service = Supervised(_start(env, log), env, log)
    process = service.process
    yield service
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


async def _worker_answering(target: str) -> int | None:
    """Which worker a fresh connection lands on: the one whose health alias is SERVING."""
    async with api_keys().channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
        for index in (0, 1):
            try:
                answer = await stub.Check(
                    health_pb2.HealthCheckRequest(service=f"{WORKER_HEALTH_PREFIX}{index}"),
                    timeout=5,
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE):
                    continue
                raise
            if answer.status == health_pb2.HealthCheckResponse.SERVING:
                # The service itself answers on this worker, database and all.
                identity = identity_pb2_grpc.IdentityServiceStub(channel)  # type: ignore[no-untyped-call]
                openid = f"o-worker-{index}-{os.urandom(4).hex()}"
                reply = await identity.ResolveCustomer(
                    identity_pb2.ResolveCustomerRequest(
                        tenant_id="workers-co",
                        identities=[
                            common_pb2.Identity(
                                kind=common_pb2.IDENTITY_KIND_WECHAT_OPENID,
                                scope="wx-app",
                                value=openid,
                            )
                        ],
                        actor="test",
                    ),
                    timeout=30,
                )
                assert reply.created
                return index
    return None


async def test_two_workers_share_the_grpc_port_and_drain_on_sigterm(
    identity: Supervised,
) -> None:
    seen: set[int] = set()

    async def both_workers_answer() -> bool:
        for _ in range(10):
            index = await _worker_answering(identity.target)
            if index is not None:
                seen.add(index)
        return seen == {0, 1}

    await eventually(both_workers_answer, timeout_s=120)
    assert len(set(identity.workers())) == 2
    # HTTP is worker 0's: one /readyz and one /metrics per pod.
    url = f"http://127.0.0.1:{identity.env['CLOSEDLOOP_HTTP_PORT']}/readyz"
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read())
    assert b"ready" in body

    identity.process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(identity.process.wait, 60) == 0
    log = identity.log.read_text()
    assert log.count("identity stopped") == 2, log


async def test_a_worker_that_dies_stops_the_service_with_an_error(identity: Supervised) -> None:
    async def serving() -> bool:
        return await _worker_answering(identity.target) is not None

    async def two_workers() -> bool:
        return len(identity.workers()) == 2

    await eventually(serving, timeout_s=120)
    await eventually(two_workers)
    os.kill(identity.workers()[1], signal.SIGKILL)
    assert await asyncio.to_thread(identity.process.wait, 60) != 0
    assert "stopping the other workers" in identity.log.read_text()


async def test_two_workers_on_sqlite_are_refused(tmp_path: Path, nats_server: NatsServer) -> None:
    env = _env(tmp_path, "sqlite+aiosqlite:///{state_dir}/{service}.db", nats_server)
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "closedloop_identity"],
        cwd=harness.ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert b"needs PostgreSQL" in done.stderr
    assert b"CLOSEDLOOP_WORKERS=1" in done.stderr
