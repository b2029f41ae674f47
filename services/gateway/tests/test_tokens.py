"""Access tokens: refreshed once and retried when WeChat refuses one, and fetched by exactly one
replica at a time when two gateway processes share a database."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from closedloop.gateway.v1 import gateway_pb2 as pb
from closedloop.gateway.v1 import gateway_pb2_grpc
from closedloop_gateway.main import DEFINITION
from gateway_helpers import (
    APP,
    APP_CORP,
    SECRETS,
    START_BOUND_S,
    TENANT,
    Emulator,
    emulator,
    gateway_overrides,
)
from loopkit import migrations
from loopkit_dev.natsserver import NatsServer, free_port, wait_for_port
from loopkit_dev.testing import PostgresServer, api_keys, eventually


def _after(calls: list[dict[str, Any]], mark: int) -> list[tuple[str, int]]:
    return [(c["api"], c["errcode"]) for c in calls[mark:]]


async def _qr(stub: Any) -> Any:
    return await stub.CreateQrCode(
        pb.CreateQrCodeRequest(tenant_id=TENANT, scene_str=f"s-{uuid.uuid4().hex[:8]}")
    )


async def test_rejected_token_is_refreshed_once_and_the_call_retried(
    stub: Any, wechat: Emulator
) -> None:
    await _qr(stub)  # a token in hand
    mark = len(wechat.calls(account=APP))
    wechat.fail("qrcode/create", 40001, app_id=APP)
    assert (await _qr(stub)).ticket
    assert _after(wechat.calls(account=APP), mark) == [
        ("qrcode/create", 40001),
        ("token", 0),
        ("qrcode/create", 0),
    ]
    # Refused twice in a row: one refresh, one retry, then the caller hears it (no loop).
    mark = len(wechat.calls(account=APP))
    wechat.fail("qrcode/create", 40001, count=2, app_id=APP)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _qr(stub)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert _after(wechat.calls(account=APP), mark) == [
        ("qrcode/create", 40001),
        ("token", 0),
        ("qrcode/create", 40001),
    ]


async def test_expired_token_is_refreshed(stub: Any, wechat: Emulator) -> None:
    await _qr(stub)
    wechat.post("/emulator/tokens/expire", {"app_id": APP})
    mark = len(wechat.calls(account=APP))
    assert (await _qr(stub)).ticket
    assert _after(wechat.calls(account=APP), mark) == [
        ("qrcode/create", 42001),
        ("token", 0),
        ("qrcode/create", 0),
    ]


@contextmanager
def _gateway_process(
    env: dict[str, str], log: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    grpc_port, http_port = free_port(), free_port()
    env = {**env, "CLOSEDLOOP_GRPC_PORT": str(grpc_port), "CLOSEDLOOP_HTTP_PORT": str(http_port)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "closedloop_gateway"], env=env, stdout=out, stderr=out
        )
    try:
        wait_for_port("127.0.0.1", grpc_port, START_BOUND_S, process)
        yield process, f"127.0.0.1:{grpc_port}"
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


def gateway_env(database_url: str, nats_url: str, emulator_url: str, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOSEDLOOP_")}
    env.update(
        {
            "CLOSEDLOOP_DATABASE_URL": database_url,
            "CLOSEDLOOP_NATS_URL": nats_url,
            "CLOSEDLOOP_STATE_DIR": str(tmp),
            "CLOSEDLOOP_LOG_LEVEL": "DEBUG",
            **api_keys().env(),
        }
    )
    for key, value in gateway_overrides(emulator_url).items():
        env[f"CLOSEDLOOP_GATEWAY_{key.upper()}"] = str(value)
    return env


TTL_S = 6
AHEAD_S = 2


@pytest.mark.postgres
async def test_two_gateway_processes_fetch_each_token_once(
    postgres: PostgresServer, nats_server: NatsServer, tmp_path: Path
) -> None:
    url = await postgres.fresh_database()
    await asyncio.to_thread(
        migrations.upgrade, DEFINITION.migrations_dir, url, service=DEFINITION.spec.name
    )
    with ExitStack() as stack:
        wechat = stack.enter_context(emulator(tmp_path, token_ttl_s=TTL_S))
        env = gateway_env(url, nats_server.url, wechat.url, tmp_path)
        env["CLOSEDLOOP_GATEWAY_TOKEN_REFRESH_AHEAD_S"] = str(AHEAD_S)
        env["CLOSEDLOOP_GATEWAY_TOKEN_CHECK_INTERVAL_S"] = "0.3"
        targets = [
            stack.enter_context(_gateway_process(env, tmp_path / f"gateway-{n}.log"))[1]
            for n in range(2)
        ]
        channels = [api_keys().channel(t) for t in targets]
        stubs = [gateway_pb2_grpc.GatewayServiceStub(c) for c in channels]  # type: ignore[no-untyped-call]
        failures: list[str] = []
        done = asyncio.Event()

        async def hammer(stub: Any) -> int:
            made = 0
            while not done.is_set():
                try:
                    await _qr(stub)
                    made += 1
                except grpc.aio.AioRpcError as exc:
                    failures.append(f"{exc.code()}: {exc.details()}")
                await asyncio.sleep(0.02)
            return made

        workers = [asyncio.create_task(hammer(s)) for s in stubs for _ in range(3)]

        async def three_tokens() -> bool:
            fetches = await asyncio.to_thread(wechat.calls, "token", APP)
            return len(fetches) >= 4 or bool(failures)

        try:
            await eventually(three_tokens, timeout_s=90, interval_s=0.5)
        finally:
            done.set()
            made = await asyncio.gather(*workers)
            for channel in channels:
                await channel.close()
        assert failures == []
        assert all(n > 0 for n in made)
        fetches = [c["at"] for c in wechat.calls("token", APP)]
        gaps = [b - a for a, b in itertools.pairwise(fetches)]
        # One fetch per token lifetime, never two at once: each new token was fetched only once
        # the previous one entered its refresh-ahead window (a second replica fetching too would
        # show as a gap of a few milliseconds).
        assert gaps and min(gaps) >= TTL_S - AHEAD_S - 0.2, gaps
        # And no call went out with a token WeChat had expired.
        assert all(c["errcode"] != 42001 for c in wechat.calls("qrcode/create", APP))
        # The corp application's token (its own secret, its own lease) was kept fresh by the
        # two background refreshers the same way: one fetch per lifetime, never two at once.
        app_fetches = [c["at"] for c in wechat.calls("gettoken", APP_CORP) if c["body"].get("app")]
        app_gaps = [b - a for a, b in itertools.pairwise(app_fetches)]
        assert app_gaps and min(app_gaps) >= TTL_S - AHEAD_S - 0.2, app_gaps
        for n in range(2):
            log = (tmp_path / f"gateway-{n}.log").read_text()
            assert SECRETS[APP] not in log
            assert SECRETS[f"{APP_CORP}/app"] not in log
