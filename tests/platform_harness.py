"""The platform as `make run` starts it, for the cross-service tests: every service listed in
services.toml as its own process, on free ports, with the bundled nats-server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from loopkit import callers
from loopkit.servicelist import listed_services
from loopkit_dev.natsserver import free_ports

ROOT = Path(__file__).resolve().parent.parent


def platform_env(state_dir: Path) -> dict[str, str]:
    """Free ports for NATS, the WeChat emulator and every listed service: never collides with a
    real `make run`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOSEDLOOP_")}
    env["CLOSEDLOOP_STATE_DIR"] = str(state_dir)
    services = listed_services(ROOT / "services.toml")
    # All different: a port given twice (a service's HTTP port that is another's gRPC port)
    # makes the platform answer its own readiness probe with HTTP/2.
    ports = iter(free_ports(2 + 2 * len(services)))
    env["CLOSEDLOOP_NATS_PORT"] = str(next(ports))
    env["CLOSEDLOOP_EMULATOR_PORT"] = str(next(ports))
    for service in services:
        prefix = f"CLOSEDLOOP_{service.name.upper()}"
        env[f"{prefix}_GRPC_PORT"] = str(next(ports))
        env[f"{prefix}_HTTP_PORT"] = str(next(ports))
    return env


def developer_key(env: dict[str, str]) -> str:
    """The development API key the `make run` of this environment made (callers need one)."""
    key = callers.developer_key(Path(env["CLOSEDLOOP_STATE_DIR"]))
    assert key, "make run keeps its development key in the state directory"
    return key


def grpc_target(env: dict[str, str], service: str) -> str:
    return f"127.0.0.1:{env[f'CLOSEDLOOP_{service.upper()}_GRPC_PORT']}"


def http_url(env: dict[str, str], service: str) -> str:
    return f"http://127.0.0.1:{env[f'CLOSEDLOOP_{service.upper()}_HTTP_PORT']}"


def emulator_url(env: dict[str, str]) -> str:
    """The WeChat API emulator `make run` starts (and points the gateway at)."""
    return f"http://127.0.0.1:{env['CLOSEDLOOP_EMULATOR_PORT']}"


def nats_url(env: dict[str, str]) -> str:
    return f"nats://127.0.0.1:{env['CLOSEDLOOP_NATS_PORT']}"


def processes_of(env: dict[str, str]) -> list[int]:
    """Pids of the processes `make run` started with this environment that are still alive
    (recognised by their CLOSEDLOOP_STATE_DIR, which children inherit). A port that happens to be
    taken by someone else afterwards says nothing about our processes; this does."""
    marker = f"CLOSEDLOOP_STATE_DIR={env['CLOSEDLOOP_STATE_DIR']}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if state != "Z" and marker in environ.split(b"\0"):
            found.append(int(proc.name))
    return found


def ports(env: dict[str, str]) -> list[int]:
    return [int(v) for k, v in env.items() if k.endswith("_PORT")]


@contextmanager
def make_run(
    env: dict[str, str], output: list[str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """The platform as `make run` starts it, until it printed its table; SIGTERM on exit.
    `output`, when given, receives what it printed until then.

    No deadline of our own: `make run` gives up by itself after CLOSEDLOOP_READY_TIMEOUT_S (and at
    once when a service dies), and pytest-timeout bounds a hang.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopkit.cli", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen: list[str] = output if output is not None else []
    try:
        for line in proc.stdout:
            seen.append(line)
            if "Stop: Ctrl-C" in line:
                break
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
