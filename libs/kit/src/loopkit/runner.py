"""`make run`: the whole platform on one machine — a bundled nats-server, SQLite files under the
state folder, and every service of services.toml as a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url

from loopkit import migrations
from loopkit.natsserver import NatsServer
from loopkit.servicelist import ListedService, listed_services
from loopkit.settings import Settings, load_settings

READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 15.0


@dataclass
class Child:
    service: ListedService
    settings: Settings
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def grpc_target(self) -> str:
        return f"{self.settings.grpc_host}:{self.settings.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.settings.http_host}:{self.settings.http_port}"

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class PlatformError(RuntimeError):
    """Something the person running `make run` must fix; printed as one message."""


class _StopRequested:
    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.requested = True


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _ready(child: Child) -> bool:
    try:
        with urllib.request.urlopen(f"{child.http_url}/readyz", timeout=1) as reply:
            if reply.status != 200:
                return False
    except (urllib.error.URLError, OSError):
        return False
    with grpc.insecure_channel(child.grpc_target) as channel:
        try:
            status = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
        except grpc.RpcError:
            return False
    return bool(status.status == health_pb2.HealthCheckResponse.SERVING)


def _wait_ready(child: Child, stop: _StopRequested) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    assert child.process is not None
    while not _ready(child):
        if child.process.poll() is not None:
            raise PlatformError(
                f"{child.service.name} exited with code {child.process.returncode} while starting; "
                f"last lines of {child.log_path}:\n{child.log_tail()}"
            )
        if stop.requested:
            raise PlatformError("stopped while starting")
        if time.monotonic() > deadline:
            raise PlatformError(
                f"{child.service.name} not ready after {READY_TIMEOUT_S:.0f}s; "
                f"last lines of {child.log_path}:\n{child.log_tail()}"
            )
        time.sleep(0.1)


def _print_table(children: list[Child], nats_url: str, state_dir: Path, bundled: bool) -> None:
    rows = [("service", "gRPC", "HTTP", "database", "log")]
    rows += [
        (
            c.service.name,
            c.grpc_target,
            c.http_url,
            _safe_url(c.settings.resolved_database_url()),
            str(c.log_path),
        )
        for c in children
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print("\nClosedLoop is running:\n")
    for row in rows:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(
        f"\n  NATS (JetStream): {nats_url}"
        + (f" (bundled, store {state_dir / 'nats'})" if bundled else "")
    )
    print(f"  Follow the logs: tail -f {state_dir / 'logs'}/*.log")
    print("  Stop: Ctrl-C\n", flush=True)


def _stop_children(children: list[Child]) -> None:
    running = [c for c in children if c.process is not None and c.process.poll() is None]
    for child in running:
        assert child.process is not None
        child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for child in running:
        assert child.process is not None
        try:
            child.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{child.service.name} did not stop within {STOP_GRACE_S:.0f}s; killing it")
            child.process.kill()
            child.process.wait()


def run_platform() -> int:
    state_dir = Path(os.environ.get("CLOSEDLOOP_STATE_DIR", ".closedloop")).resolve()
    (state_dir / "logs").mkdir(parents=True, exist_ok=True)
    stop = _StopRequested()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    nats: NatsServer | None = None
    nats_url = os.environ.get("CLOSEDLOOP_NATS_URL", "")
    children: list[Child] = []
    try:
        if not nats_url:
            port = int(os.environ.get("CLOSEDLOOP_NATS_PORT", "4250"))
            nats = NatsServer(state_dir / "nats", port=port, sync_always=True)
            try:
                nats.start()
            except TimeoutError as exc:
                raise PlatformError(
                    f"bundled nats-server did not start on port {port}: {exc}; "
                    f"see {state_dir / 'nats' / 'nats-server.log'}"
                ) from None
            nats_url = nats.url
        # Children and the settings read below see the same environment.
        os.environ["CLOSEDLOOP_NATS_URL"] = nats_url
        os.environ["CLOSEDLOOP_STATE_DIR"] = str(state_dir)
        for service in listed_services():
            definition = service.definition()
            settings = load_settings(definition.spec)
            migrations.upgrade(definition.migrations_dir, settings.resolved_database_url())
            children.append(Child(service, settings, state_dir / "logs" / f"{service.name}.log"))
        for child in children:
            with open(child.log_path, "ab") as log:
                child.process = subprocess.Popen(
                    [sys.executable, "-m", child.service.module],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
        for child in children:
            _wait_ready(child, stop)
        _print_table(children, nats_url, state_dir, bundled=nats is not None)
        while not stop.requested:
            for child in children:
                assert child.process is not None
                if child.process.poll() is not None:
                    raise PlatformError(
                        f"{child.service.name} exited with code {child.process.returncode}; "
                        f"last lines of {child.log_path}:\n{child.log_tail()}"
                    )
            time.sleep(0.2)
        print("stopping…", flush=True)
        return 0
    except PlatformError as exc:
        print(f"make run: {exc}", file=sys.stderr, flush=True)
        return 0 if stop.requested and str(exc) == "stopped while starting" else 1
    finally:
        _stop_children(children)
        if nats is not None:
            nats.stop()
        print("stopped", flush=True)
