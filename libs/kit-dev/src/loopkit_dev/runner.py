"""`make run`: the whole platform on one machine — a bundled nats-server, SQLite files under the
state folder, and every service of services.toml as a child process."""

from __future__ import annotations

import http.client
import os
import signal
import socket
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

from loopkit import emulated_accounts
from loopkit.callers import DEVELOPER_KEY_FILE, KEYS_FILE_NAME, SERVICE_ROLE, KeyStore
from loopkit.operator import DEFAULT_NATS_PORT as DEFAULT_NATS_PORT
from loopkit.operator import PlatformError as PlatformError
from loopkit.operator import load_services as load_services
from loopkit.operator import migrate as migrate
from loopkit.operator import nats_port as nats_port
from loopkit.operator import nats_url_from_env as nats_url_from_env
from loopkit.operator import safe_url as safe_url
from loopkit.operator import settings_for as settings_for
from loopkit.runtime import ServiceDefinition
from loopkit.servicelist import ListedService
from loopkit.settings import Settings
from loopkit_dev.natsserver import NatsServer

# How long a service may take to become ready (CLOSEDLOOP_READY_TIMEOUT_S): a busy laptop or CI
# machine starting every service at once can be slow, and a child that dies is reported at once.
DEFAULT_READY_TIMEOUT_S = 600.0
# The gateway's stand-in for WeChat, started first unless real WeChat hosts are configured.
EMULATOR_MODULE = "closedloop_gateway.emulator"
DEFAULT_EMULATOR_PORT = 8090
_WECHAT_BASES = (
    "CLOSEDLOOP_GATEWAY_WECHAT_API_BASE",
    "CLOSEDLOOP_GATEWAY_WECHAT_OAUTH_BASE",
    "CLOSEDLOOP_GATEWAY_WECHAT_MP_BASE",
    "CLOSEDLOOP_GATEWAY_WECOM_API_BASE",
)
# How long stopping waits for the services before killing them; a loaded machine needs longer
# than a quiet one (CLOSEDLOOP_STOP_GRACE_S).
DEFAULT_STOP_GRACE_S = 30.0
# Keys a run makes for itself when callers must authenticate (replaced by the next run's).
SERVICES_KEY_NAME = "make-run services"
DEVELOPER_KEY_NAME = "make-run developer"
# A service stopped by our SIGTERM, or by the terminal's Ctrl-C before it installed its handlers.
_CLEAN_EXITS = {0, -signal.SIGTERM, -signal.SIGINT}
# Probes go straight to 127.0.0.1, whatever http_proxy/grpc_proxy the developer's shell sets.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def stop_grace_s() -> float:
    raw = os.environ.get("CLOSEDLOOP_STOP_GRACE_S", "")
    try:
        value = float(raw) if raw else DEFAULT_STOP_GRACE_S
    except ValueError:
        value = -1.0
    if not value > 0:
        raise PlatformError(f"CLOSEDLOOP_STOP_GRACE_S must be a positive number, not {raw!r}", 2)
    return value


def ready_timeout_s() -> float:
    raw = os.environ.get("CLOSEDLOOP_READY_TIMEOUT_S", "")
    if not raw:
        return DEFAULT_READY_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise PlatformError(f"CLOSEDLOOP_READY_TIMEOUT_S must be a positive number, not {raw!r}", 2)
    return value


def point_at_gateway(planned: list[tuple[ListedService, ServiceDefinition, Settings]]) -> None:
    """When the gateway runs, every service with a `gateway_url` setting sends through it
    (CLOSEDLOOP_<SVC>_GATEWAY_URL, unless the environment already says where)."""
    gateway = next((s for service, _, s in planned if service.name == "gateway"), None)
    if gateway is None:
        return
    for service, definition, _ in planned:
        env = f"CLOSEDLOOP_{service.name.upper()}_GATEWAY_URL"
        if "gateway_url" in definition.settings_cls.model_fields and env not in os.environ:
            os.environ[env] = f"{gateway.grpc_host}:{gateway.grpc_port}"


@dataclass
class Child:
    name: str
    module: str
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

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            # Same process group as the runner: a terminal's Ctrl-C reaches every service at once.
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def died(self, when: str) -> PlatformError:
        return PlatformError(
            f"{self.name} exited with code {self.exited()}{when}; "
            f"last lines of {self.log_path}:\n{self.log_tail()}"
        )


class _StopRequested:
    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.requested = True


def _port_in_use(host: str, port: int) -> bool:
    # SO_REUSEADDR: a socket of a previous run in TIME_WAIT is no conflict, a listener is.
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _check_ports(ports: list[tuple[str, str, int, str]]) -> None:
    """(what, host, port, how to move it); fail before starting anything that would collide.

    Without this a second `make run` would find the first one's listeners and report them ready.
    """
    for what, host, port, remedy in ports:
        if port == 0:
            raise PlatformError(f"{what} needs a fixed port for make run; {remedy}", exit_code=2)
        if _port_in_use(host, port):
            raise PlatformError(
                f"{what} port {host}:{port} is already in use (another `make run`?); {remedy}",
                exit_code=2,
            )


def _ready(child: Child) -> bool:
    """Its /readyz answers 200 and its gRPC health is SERVING."""
    try:
        with _NO_PROXY.open(f"{child.http_url}/readyz", timeout=1) as reply:
            if reply.status != 200:
                return False
    except (urllib.error.URLError, OSError, http.client.HTTPException):
        # HTTPException: something that is not HTTP/1 answered on the port (not ready, not ours).
        return False
    options = [("grpc.enable_http_proxy", 0)]
    with grpc.insecure_channel(child.grpc_target, options=options) as channel:
        try:
            status = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
        except grpc.RpcError:
            return False
    return bool(status.status == health_pb2.HealthCheckResponse.SERVING)


def _wait_ready(child: Child, stop: _StopRequested, timeout_s: float) -> bool:
    """True once ready; False if a stop was requested meanwhile."""
    deadline = time.monotonic() + timeout_s
    while not _ready(child):
        if child.exited() is not None:
            raise child.died(" while starting")
        if stop.requested:
            return False
        if time.monotonic() > deadline:
            raise PlatformError(
                f"{child.name} not ready after {timeout_s:.0f}s "
                "(CLOSEDLOOP_READY_TIMEOUT_S); "
                f"last lines of {child.log_path}:\n{child.log_tail()}"
            )
        time.sleep(0.1)
    return True


def _development_keys(state_dir: Path) -> str | None:
    """Callers need API keys, here as in production: this run makes the services' own key (their
    CLOSEDLOOP_API_TOKEN) and a developer key, both for every tenant, in CLOSEDLOOP_API_KEYS_FILE
    (default: the state directory's api-keys.json), replacing those of an earlier run. The
    developer key is printed and kept in the state directory for `make demo` and the tests.
    CLOSEDLOOP_ALLOW_ANONYMOUS_CALLERS=1 turns this off (and is printed as a warning)."""
    if os.environ.get("CLOSEDLOOP_ALLOW_ANONYMOUS_CALLERS", "").lower() in ("1", "true", "yes"):
        return None
    path = Path(os.environ.get("CLOSEDLOOP_API_KEYS_FILE") or state_dir / KEYS_FILE_NAME)
    os.environ["CLOSEDLOOP_API_KEYS_FILE"] = str(path)
    store = KeyStore(path)
    for entry in store.entries():
        if entry.get("name") in (SERVICES_KEY_NAME, DEVELOPER_KEY_NAME):
            store.revoke(entry["id"])
    os.environ["CLOSEDLOOP_API_TOKEN"] = store.add(SERVICES_KEY_NAME, ["*"], SERVICE_ROLE)
    key = store.add(DEVELOPER_KEY_NAME, ["*"], "write")
    fd = os.open(state_dir / DEVELOPER_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key + "\n")
    return key


def _print_table(
    children: list[Child],
    nats_url: str,
    state_dir: Path,
    bundled: bool,
    developer_key: str | None = None,
) -> None:
    rows = [("service", "gRPC", "HTTP", "NATS", "database", "log")]
    rows += [
        (
            c.name,
            c.grpc_target,
            c.http_url,
            c.settings.nats_url,
            safe_url(c.settings.resolved_database_url()),
            str(c.log_path),
        )
        for c in children
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print("\nClosedLoop is running:\n")
    for row in rows:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    where = f"bundled, store {state_dir / 'nats'}" if bundled else "external"
    print(f"\n  NATS (JetStream): {nats_url} ({where})")
    if developer_key:
        print(f"  API key (development, every tenant): {developer_key}")
        print("    gRPC metadata: authorization: Bearer <key>; more: closedloop keys add --help")
        print(f"    (kept in {state_dir / DEVELOPER_KEY_FILE} for make demo)")
    else:
        print("  WARNING: callers are NOT authenticated (CLOSEDLOOP_ALLOW_ANONYMOUS_CALLERS):")
        print("    anyone who reaches a port acts for every tenant")
    print(f"  Follow the logs: tail -f {state_dir / 'logs'}/*.log")
    print("  Stop: Ctrl-C\n", flush=True)


def _stop_children(children: list[Child]) -> bool:
    """SIGTERM, a grace period, then SIGKILL. True when every service stopped cleanly."""
    running = [c for c in children if c.process is not None and c.exited() is None]
    for child in running:
        assert child.process is not None
        child.process.send_signal(signal.SIGTERM)
    grace_s = stop_grace_s()
    deadline = time.monotonic() + grace_s
    clean = True
    for child in running:
        assert child.process is not None
        try:
            code = child.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{child.name} did not stop within {grace_s:.0f}s; killing it")
            child.process.kill()
            child.process.wait()
            clean = False
            continue
        if code not in _CLEAN_EXITS:
            print(f"{child.name} stopped with code {code}; see {child.log_path}")
            clean = False
    return clean


@dataclass
class _Platform:
    state_dir: Path
    stop: _StopRequested
    nats: NatsServer | None = None
    nats_url: str = ""
    emulator_port: int = 0
    emulator: subprocess.Popen[bytes] | None = None
    developer_key: str | None = None

    def __post_init__(self) -> None:
        self.children: list[Child] = []

    def plan_emulator(self, names: list[str]) -> None:
        """With the gateway listed and no WeChat hosts configured, point it at the emulator."""
        if "gateway" not in names or any(k in os.environ for k in _WECHAT_BASES):
            return
        raw = os.environ.get("CLOSEDLOOP_EMULATOR_PORT", str(DEFAULT_EMULATOR_PORT))
        if not raw.isdigit():
            raise PlatformError(f"CLOSEDLOOP_EMULATOR_PORT must be a port number, not {raw!r}", 2)
        self.emulator_port = int(raw)
        for key in _WECHAT_BASES:
            os.environ[key] = f"http://127.0.0.1:{self.emulator_port}"

    def start_emulator(self) -> None:
        if not self.emulator_port:
            return
        log_path = self.state_dir / "logs" / "wechat-emulator.log"
        with open(log_path, "ab") as log:
            self.emulator = subprocess.Popen(
                [sys.executable, "-m", EMULATOR_MODULE, "--port", str(self.emulator_port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + ready_timeout_s()
        while not _port_in_use("127.0.0.1", self.emulator_port):
            if self.emulator.poll() is not None or time.monotonic() > deadline:
                raise PlatformError(f"the WeChat emulator did not start; see {log_path}")
            time.sleep(0.1)

    def plan(self) -> list[tuple[ListedService, ServiceDefinition, Settings]]:
        """Decide NATS, then load every service's settings in the environment its child gets."""
        self.nats_url = os.environ.get("CLOSEDLOOP_NATS_URL", "")
        if not self.nats_url:
            self.nats = NatsServer(self.state_dir / "nats", port=nats_port(), sync_always=True)
            self.nats_url = self.nats.url
        # Children inherit these, and settings_for (load_settings) reads the same values.
        os.environ["CLOSEDLOOP_NATS_URL"] = self.nats_url
        os.environ["CLOSEDLOOP_STATE_DIR"] = str(self.state_dir)
        self.developer_key = _development_keys(self.state_dir)
        loaded = load_services()
        self.plan_emulator([s.name for s, _ in loaded])
        if self.emulator_port:
            emulated_accounts.apply_defaults()  # a `demo` tenant, unless accounts are configured
        planned = [(s, d, settings_for(d)) for s, d in loaded]
        # The stage services find identity where this run puts it (its port may be overridden).
        for service, _, settings in planned:
            if service.name == "identity" and "CLOSEDLOOP_IDENTITY_URL" not in os.environ:
                os.environ["CLOSEDLOOP_IDENTITY_URL"] = f"{settings.grpc_host}:{settings.grpc_port}"
        point_at_gateway(planned)
        return planned

    def check_ports(
        self, services: list[tuple[ListedService, ServiceDefinition, Settings]]
    ) -> None:
        ports = []
        if self.nats is not None:
            remedy = "set CLOSEDLOOP_NATS_PORT, or CLOSEDLOOP_NATS_URL to use that server"
            ports.append(("bundled NATS", self.nats.host, self.nats.port, remedy))
        for service, _, s in services:
            name = service.name
            env = f"CLOSEDLOOP_{name.upper()}"
            ports.append((f"{name} gRPC", s.grpc_host, s.grpc_port, f"set {env}_GRPC_PORT"))
            ports.append((f"{name} HTTP", s.http_host, s.http_port, f"set {env}_HTTP_PORT"))
        if self.emulator_port:
            remedy = "set CLOSEDLOOP_EMULATOR_PORT"
            ports.append(("WeChat emulator", "127.0.0.1", self.emulator_port, remedy))
        _check_ports(ports)

    def start_nats(self) -> None:
        if self.nats is None:
            return
        try:
            self.nats.start()
        except TimeoutError as exc:
            raise PlatformError(
                f"bundled nats-server did not start: {exc}; "
                f"see {self.state_dir / 'nats' / 'nats-server.log'}"
            ) from None
        if self.nats.process is None or self.nats.process.poll() is not None:
            raise PlatformError(
                f"bundled nats-server exited; see {self.state_dir / 'nats' / 'nats-server.log'}"
            )

    def run(self) -> int:
        ready_within = ready_timeout_s()
        stop_grace_s()  # a wrong value is refused now, not when the run is being stopped
        services = self.plan()
        self.check_ports(services)
        self.start_nats()
        self.start_emulator()
        for service, definition, settings in services:
            migrate(service.name, definition, settings)
            log_path = self.state_dir / "logs" / f"{service.name}.log"
            self.children.append(Child(service.name, service.module, settings, log_path))
        for child in self.children:
            child.start()
        if not all(_wait_ready(child, self.stop, ready_within) for child in self.children):
            return 0  # Ctrl-C while starting
        _print_table(
            self.children,
            self.nats_url,
            self.state_dir,
            bundled=self.nats is not None,
            developer_key=self.developer_key,
        )
        if self.emulator_port:
            url = f"http://127.0.0.1:{self.emulator_port}"
            print(f"  WeChat emulator: {url} (what was sent: {url}/emulator/calls)\n", flush=True)
        while not self.stop.requested:
            for child in self.children:
                if child.exited() is not None:
                    raise child.died("")
            time.sleep(0.2)
        return 0

    def shutdown(self) -> bool:
        started = (
            self.children
            or self.emulator is not None
            or (self.nats is not None and self.nats.process is not None)
        )
        if started:
            print("stopping…", flush=True)
        clean = _stop_children(self.children)
        if self.emulator is not None and self.emulator.poll() is None:
            self.emulator.terminate()
            try:
                self.emulator.wait(stop_grace_s())
            except subprocess.TimeoutExpired:
                self.emulator.kill()
        if self.nats is not None:
            self.nats.stop()
        if started:
            print("stopped", flush=True)
        return clean


def run_platform() -> int:
    """Start everything, serve until SIGINT/SIGTERM or a service dies, stop everything.

    0 after a clean stop on request; 1 when a service failed or had to be killed; 2 when the
    configuration (services.toml, ports) must be fixed first.
    """
    state_dir = Path(os.environ.get("CLOSEDLOOP_STATE_DIR", ".closedloop")).resolve()
    (state_dir / "logs").mkdir(parents=True, exist_ok=True)
    stop = _StopRequested()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    platform = _Platform(state_dir, stop)
    code = 1
    try:
        code = platform.run()
    except PlatformError as exc:
        print(f"make run: {exc}", file=sys.stderr, flush=True)
        code = exc.exit_code
    finally:
        if not platform.shutdown():
            code = code or 1
    return code
