"""Shared parts of the gateway tests: the emulator as its own process over real HTTP, the
credential registry the gateways run with, and shortcuts for the emulator's control API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from loopkit_dev.natsserver import free_port, wait_for_port

TENANT = "t-gw"
OTHER_TENANT = "t-gw-other"
APP = "wx-gw-main"
CORP = "ww-gw-main"
# Accounts of their own for tests that leave an API paused (quota tests) or count token fetches.
QUOTA_APP = "wx-gw-quota"
WINDOW_APP = "wx-gw-window"
OTHER_APP = "wx-gw-other"
# A corp with an application (agent_id + agent_secret): its members (reps) can be messaged.
APP_CORP = "ww-gw-app"
APP_CORP_AGENT = "1000005"
SECRETS = {
    APP_CORP: "corp-secret-app-corp-41c7d2",
    f"{APP_CORP}/app": "agent-secret-app-corp-8e3f90",
    APP: "app-secret-main-5f1c2a9e",
    CORP: "corp-secret-main-77e01b3d",
    QUOTA_APP: "app-secret-quota-0b9d4e12",
    WINDOW_APP: "app-secret-window-c3a18f70",
    OTHER_APP: "app-secret-other-9d2e6b41",
}


def accounts_json() -> str:
    def oa(tenant: str, app_id: str, default: bool = False) -> dict[str, Any]:
        return {
            "tenant_id": tenant,
            "app_id": app_id,
            "app_secret": SECRETS[app_id],
            "token": f"cb-token-{app_id}",
            "aes_key": "a" * 43,
            "default": default,
        }

    return json.dumps(
        {
            "official_accounts": [
                oa(TENANT, APP, default=True),
                oa(TENANT, QUOTA_APP),
                oa(TENANT, WINDOW_APP),
                oa(OTHER_TENANT, OTHER_APP),
            ],
            "wecom_corps": [
                {
                    "tenant_id": TENANT,
                    "corp_id": CORP,
                    "contact_secret": SECRETS[CORP],
                    "agent_id": "1000002",
                    "default": True,
                },
                {
                    "tenant_id": TENANT,
                    "corp_id": APP_CORP,
                    "contact_secret": SECRETS[APP_CORP],
                    "agent_id": APP_CORP_AGENT,
                    "agent_secret": SECRETS[f"{APP_CORP}/app"],
                },
            ],
        }
    )


@dataclass
class Emulator:
    url: str
    process: subprocess.Popen[bytes]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, trust_env=False)

    def calls(self, api: str = "", account: str = "") -> list[dict[str, Any]]:
        with self.client() as http:
            answer = http.get("/emulator/calls", params={"api": api, "account": account})
            answer.raise_for_status()
            calls: list[dict[str, Any]] = answer.json()
            return calls

    def post(self, path: str, body: dict[str, Any]) -> Any:
        with self.client() as http:
            answer = http.post(path, json=body)
            answer.raise_for_status()
            return answer.json()

    def fail(self, api: str, errcode: int, count: int = 1, **kw: Any) -> None:
        self.post("/emulator/fail", {"api": api, "errcode": errcode, "count": count, **kw})

    def user(self, **fields: Any) -> None:
        self.post("/emulator/users", fields)


# How long a process of ours may take to listen on a busy machine (its exit is seen at once).
START_BOUND_S = 300.0


@contextmanager
def emulator(log_dir: Path, token_ttl_s: int = 7200) -> Iterator[Emulator]:
    port = free_port()
    log = (log_dir / f"emulator-{port}.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "closedloop_gateway.emulator",
            "--port",
            str(port),
            "--token-ttl",
            str(token_ttl_s),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        # The emulator registers the applications of the registry it is started with.
        env={**os.environ, "CLOSEDLOOP_ACCOUNTS": accounts_json()},
    )
    try:
        # Bounded only against a hang: an emulator that exits is reported at once.
        wait_for_port("127.0.0.1", port, START_BOUND_S, process)
        yield Emulator(f"http://127.0.0.1:{port}", process)
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def gateway_overrides(emulator_url: str) -> dict[str, Any]:
    """Settings of a gateway pointed at the emulator."""
    return {
        "accounts": accounts_json(),
        "wechat_api_base": emulator_url,
        "wechat_oauth_base": emulator_url,
        "wechat_mp_base": emulator_url,
        "wecom_api_base": emulator_url,
        "send_poll_interval_s": 0.2,
        "send_retry_base_s": 0.1,
    }


def wait_until(check: Any, timeout_s: float = 20.0) -> Any:
    """Poll a synchronous predicate (for subprocess tests); returns its last truthy value."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout_s}s (last: {last!r})")


def unique(prefix: str) -> str:
    import uuid

    return f"{prefix}-{uuid.uuid4().hex[:10]}"
