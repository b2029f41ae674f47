"""Anonymous callers are refused by default: a service started without an API key file refuses
to start with a message saying what to set, unless CLOSEDLOOP_ALLOW_ANONYMOUS_CALLERS=1 says on
purpose that anyone may call it; a service with keys answers a call without one UNAUTHENTICATED."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

import closedloop_identity.main
from closedloop.common.v1 import common_pb2
from closedloop.identity.v1 import identity_pb2 as pb
from closedloop.identity.v1 import identity_pb2_grpc
from loopkit_dev.natsserver import NatsServer, free_port
from loopkit_dev.testing import eventually, running_service

ENV_KEYS = (
    "CLOSEDLOOP_API_KEYS_FILE",
    "CLOSEDLOOP_API_TOKEN",
    "CLOSEDLOOP_ALLOW_ANONYMOUS_CALLERS",
)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    return env | {
        "CLOSEDLOOP_STATE_DIR": str(tmp_path),
        "CLOSEDLOOP_GRPC_PORT": "0",
        "CLOSEDLOOP_HTTP_PORT": "0",
        **extra,
    }


def _start(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "closedloop_identity"],
        env=_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_service_without_a_key_file_refuses_to_start(tmp_path: Path) -> None:
    done = _start(tmp_path)
    assert done.returncode != 0
    assert "refusing to start" in done.stderr
    assert "CLOSEDLOOP_API_KEYS_FILE" in done.stderr
    assert "CLOSEDLOOP_ALLOW_ANONYMOUS_CALLERS=1" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_key_file_that_is_not_there_is_refused_too(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "api-keys.json"
    done = _start(tmp_path, CLOSEDLOOP_API_KEYS_FILE=str(missing))
    assert done.returncode != 0
    assert "refusing to start" in done.stderr and str(missing) in done.stderr


def _resolve(tenant: str) -> pb.ResolveCustomerRequest:
    return pb.ResolveCustomerRequest(
        tenant_id=tenant,
        identities=[
            common_pb2.Identity(kind=common_pb2.IDENTITY_KIND_WECHAT_UNIONID, value="u-anon")
        ],
    )


async def test_a_service_with_keys_answers_an_anonymous_call_unauthenticated(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with running_service(
        closedloop_identity.main.DEFINITION,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/identity.db",
        nats_url=nats_server.url,
        state_dir=tmp_path,
    ) as identity:
        async with grpc.aio.insecure_channel(identity.grpc_target) as anonymous:
            stub = identity_pb2_grpc.IdentityServiceStub(anonymous)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ResolveCustomer(_resolve("t-anon"))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        keyed = identity_pb2_grpc.IdentityServiceStub(identity.channel)
        assert (await keyed.ResolveCustomer(_resolve("t-anon"))).created


async def test_allowing_anonymous_callers_is_explicit(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with running_service(
        closedloop_identity.main.DEFINITION,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/identity.db",
        nats_url=nats_server.url,
        state_dir=tmp_path,
        allow_anonymous_callers=True,
    ) as identity:
        assert identity.keys is None and identity.api_key is None
        async with grpc.aio.insecure_channel(identity.grpc_target) as anonymous:
            stub = identity_pb2_grpc.IdentityServiceStub(anonymous)
            assert (await stub.ResolveCustomer(_resolve("t-anon-ok"))).created


def _spawn(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python -m closedloop_identity`, as a pod runs it."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "closedloop_identity"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def test_the_allow_flag_runs_a_service_without_keys_and_says_so(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    port = free_port()
    env = _env(
        tmp_path,
        CLOSEDLOOP_ALLOW_ANONYMOUS_CALLERS="1",
        CLOSEDLOOP_NATS_URL=nats_server.url,
        CLOSEDLOOP_GRPC_PORT=str(port),
        CLOSEDLOOP_HTTP_PORT=str(free_port()),
        CLOSEDLOOP_LOG_FORMAT="text",
    )
    migrate = [sys.executable, "-m", "loopkit.cli", "migrate", "identity"]
    await asyncio.to_thread(
        subprocess.run, migrate, env=env, check=True, capture_output=True, timeout=300
    )
    log = tmp_path / "identity.log"
    process = _spawn(env, log)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as anonymous:
            stub = identity_pb2_grpc.IdentityServiceStub(anonymous)
            created: list[bool] = []

            async def answered() -> bool:
                try:
                    created.append((await stub.ResolveCustomer(_resolve("t-flag"))).created)
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc  # still starting
                    return False
                return True

            await eventually(answered)
        assert created == [True]
        assert "callers are NOT authenticated" in log.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 60)
