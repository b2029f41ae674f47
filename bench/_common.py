"""Shared benchmark helpers: child processes, throwaway databases, a closed-loop load generator,
and the gRPC echo server the benchmarks compare against.

Run as a script it is that echo server: `python bench/_common.py echo RAW_PORT KIT_PORT` serves
`/bench.Echo/Echo` twice from one process, on a bare `grpc.aio` server (RAW_PORT) and on the
kit's `GrpcServer` with its interceptor (KIT_PORT).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

ECHO_METHOD = "/bench.Echo/Echo"
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/"
_KEYS: list[tuple[Path, str]] = []


def _bench_keys() -> tuple[Path, str]:
    """This run's API key file and the services' key in it (made on first use, removed at exit):
    services refuse anonymous callers, so the benchmarks measure calls as they are made in
    production, key check included."""
    if not _KEYS:
        import atexit
        import shutil
        import tempfile

        from loopkit.callers import ALL_TENANTS, SERVICE_ROLE, KeyStore

        folder = Path(tempfile.mkdtemp(prefix="closedloop-bench-keys-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        store = KeyStore(folder / "api-keys.json")
        _KEYS.append((store.path, store.add("bench", [ALL_TENANTS], SERVICE_ROLE)))
    return _KEYS[0]


def keys_env() -> dict[str, str]:
    """What a service started by a benchmark needs to accept its calls (and make its own)."""
    path, key = _bench_keys()
    return {"CLOSEDLOOP_API_KEYS_FILE": str(path), "CLOSEDLOOP_API_TOKEN": key}


def keyed(target: str, *, own_connection: bool = False) -> grpc.aio.Channel:
    """A channel to a benchmark's service whose calls present the run's key (`own_connection`:
    see `loopkit.grpc_client.keyed_channel`)."""
    from loopkit.grpc_client import keyed_channel

    return keyed_channel(target, _bench_keys()[1], own_connection=own_connection)


def database_base_url() -> str:
    return (
        os.environ.get("CLOSEDLOOP_BENCH_DATABASE_URL")
        or os.environ.get("CLOSEDLOOP_TEST_DATABASE_URL")
        or DEFAULT_PG
    )


# --- cleanup -------------------------------------------------------------------------------


class Cleanup:
    """Undo actions run last-in first-out, each once, even after Ctrl-C or a failure."""

    def __init__(self) -> None:
        self._actions: list[tuple[str, Callable[[], object]]] = []

    def push(self, what: str, action: Callable[[], object]) -> None:
        self._actions.append((what, action))

    def run(self) -> None:
        # A second Ctrl-C must not leave a database or a process behind.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            while self._actions:
                what, action = self._actions.pop()
                try:
                    action()
                except Exception as exc:
                    print(f"cleanup: {what} failed: {exc}", file=sys.stderr)
        finally:
            signal.signal(signal.SIGINT, previous)


# --- child processes -----------------------------------------------------------------------


class ChildProcess:
    """A child in its own session (a terminal's Ctrl-C reaches only us; we stop it), logging to
    a file."""

    def __init__(
        self, name: str, argv: Sequence[str], *, log_path: Path, env: dict[str, str], cwd: Path
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log_offset = log_path.stat().st_size if log_path.exists() else 0
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise RuntimeError(
                f"{self.name} exited with {code}; last log lines:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def own_log(self) -> str:
        """What this process wrote to its log (the file may hold an earlier attempt's too)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM (graceful drain), then SIGKILL after `timeout_s`. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


# --- ports ---------------------------------------------------------------------------------
# A free port is chosen here and bound by a child later: another process (another bench, a test,
# an outgoing connection's source port) can take it in between. So a child started on chosen
# ports counts as started only once *it* listens on them (its socket, found through /proc: a
# health check could be answered by whoever took the port), and one that exits because a port
# was taken is started again on new ports.

_TAKEN = ("address already in use", "address in use", "eaddrinuse", "errno 98", "cannot listen")
START_ATTEMPTS = 5


class PortTaken(RuntimeError):
    """A child could not listen on a port chosen for it: another process took it meanwhile."""


def _descendants(pid: int) -> set[int]:
    """`pid` and every process below it (a service's worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo += children.get(current, [])
    return found


def _sockets(port: int, state: str) -> set[str]:
    """The inodes of the TCP sockets on local port `port` (any address) in `state` (as
    /proc/net/tcp writes it: 0A listening, 01 established)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == state and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def _listening_sockets(port: int) -> set[str]:
    """The inodes of the TCP sockets listening on `port` (any address)."""
    return _sockets(port, "0A")


async def wait_listeners(port: int, count: int, timeout_s: float = 60.0) -> int:
    """Wait until `count` sockets listen on `port` (each SO_REUSEPORT worker its own), so that
    callers connecting next are spread over all of them: the kernel hashes a connection only
    among the sockets listening when it arrives. Returns how many listen (fewer: timed out)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = len(_listening_sockets(port))
        if found >= count or time.monotonic() >= deadline:
            return found
        await asyncio.sleep(0.05)


def accepted_connections(pids: Sequence[int], port: int) -> dict[int, int]:
    """How many established connections on local port `port` each of `pids` holds (a server's
    accepted ones: which worker the kernel gave each caller's connection to)."""
    wanted = {f"socket:[{inode}]" for inode in _sockets(port, "01")}
    counts = {}
    for pid in pids:
        counts[pid] = 0
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    counts[pid] += os.readlink(fd) in wanted
    return counts


def listens(pid: int, port: int) -> bool:
    """Whether process `pid` (or one below it) holds a socket listening on `port`."""
    wanted = {f"socket:[{inode}]" for inode in _listening_sockets(port)}
    if not wanted:
        return False
    for each in _descendants(pid):
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{each}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in wanted:
                        return True
    return False


def _raise_exited(name: str, code: int, log: str) -> None:
    if any(sign in log.lower() for sign in _TAKEN):
        raise PortTaken(f"{name} could not listen (exit {code}): a port was taken")
    tail = "\n".join(log.splitlines()[-20:])
    raise RuntimeError(f"{name} exited with {code}; last log lines:\n{tail}")


async def wait_listening(
    name: str,
    proc: subprocess.Popen[bytes],
    ports: Sequence[int],
    log: Callable[[], str],
    timeout_s: float = 120.0,
) -> None:
    """Until `proc` (or a process below it) listens on every port. PortTaken when it exited
    saying a port was taken, RuntimeError when it exited otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        code = proc.poll()
        if code is not None:
            _raise_exited(name, code, log())
        if all(listens(proc.pid, port) for port in ports):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} not listening on {list(ports)} after {timeout_s}s")
        await asyncio.sleep(0.05)


async def start_on_free_ports(
    name: str,
    count: int,
    start: Callable[[list[int]], ChildProcess],
    *,
    timeout_s: float = 120.0,
) -> tuple[ChildProcess, list[int]]:
    """`start(ports)` on `count` free ports, until the child listens on them; started again on
    new ports (a few times) when one was taken before the child bound it."""
    from loopkit_dev.natsserver import free_ports

    for attempt in range(1, START_ATTEMPTS + 1):
        ports = free_ports(count)
        child = start(ports)
        try:
            await wait_listening(name, child.proc, ports, child.own_log, timeout_s)
            return child, ports
        except PortTaken:
            child.stop()
            if attempt == START_ATTEMPTS:
                raise
            print(f"{name}: a port was taken before it bound it; new ports", file=sys.stderr)
        except BaseException:
            child.stop()
            raise
    raise AssertionError("unreachable")


async def start_nats(store_dir: Path, *, sync_always: bool = True) -> Any:
    """A NatsServer (loopkit_dev) on a free port, listening (started again on another port when
    the chosen one was taken meanwhile)."""
    from loopkit_dev.natsserver import NatsServer, free_port

    log_path = store_dir / "nats-server.log"
    for attempt in range(1, START_ATTEMPTS + 1):
        offset = log_path.stat().st_size if log_path.exists() else 0

        def own_log(offset: int = offset) -> str:
            with open(log_path, "rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")

        server = NatsServer(store_dir, port=free_port(), sync_always=sync_always)
        try:
            await asyncio.to_thread(server.start)
            assert server.process is not None
            await wait_listening("nats-server", server.process, [server.port], own_log)
            return server
        except (PortTaken, RuntimeError, TimeoutError) as exc:  # start: TimeoutError on exit
            server.stop()
            if not isinstance(exc, PortTaken) and not any(
                sign in own_log().lower() for sign in _TAKEN
            ):
                raise
            if attempt == START_ATTEMPTS:
                raise
            print("nats-server: its port was taken before it bound it; new port", file=sys.stderr)
    raise AssertionError("unreachable")


# --- databases -----------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each live process."""
    tick = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / tick
    return seconds


def peak_rss_mib(pid: int) -> float | None:
    """The most resident memory a live process has used so far (VmHWM), in MiB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two `cpu_seconds` samples by the processes alive at the second
    (one that started in between spent all of its CPU in between)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


async def backend_pids(url: str) -> list[int]:
    """The PostgreSQL backends serving database `url` now (their CPU is readable in /proc only
    when the server runs on this machine)."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            return [int(r[0]) for r in rows]
    finally:
        await engine.dispose()


def new_database_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def _admin(base_url: str, sql: str) -> None:
    admin = create_async_engine(
        make_url(base_url).set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
    )
    try:
        async with admin.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await admin.dispose()


async def create_database(base_url: str, name: str) -> str:
    """Create database `name` on the server of `base_url`; returns its URL."""
    await _admin(base_url, f'CREATE DATABASE "{name}"')
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(base_url: str, name: str) -> None:
    await _admin(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- readiness -----------------------------------------------------------------------------


async def wait_serving(
    target: str, child: ChildProcess | None, timeout_s: float = 30.0, *, service: str = ""
) -> None:
    """Until the target's gRPC health check answers SERVING (or the child died)."""
    deadline = time.monotonic() + timeout_s
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if child is not None:
                child.check_alive()
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{target} not serving after {timeout_s}s")
            await asyncio.sleep(0.1)


# --- load generation -----------------------------------------------------------------------


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence (NaN when empty)."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(p * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class CellResult:
    target: str
    workload: str
    concurrency: int
    duration_s: float
    ok: int
    errors: int
    p50_ms: float
    p99_ms: float
    error_kinds: Counter[str] = field(default_factory=Counter)

    @property
    def rps(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "workload": self.workload,
            "concurrency": self.concurrency,
            "duration_s": round(self.duration_s, 3),
            "ok": self.ok,
            "errors": self.errors,
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "error_kinds": dict(self.error_kinds),
        }


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"


async def closed_loop(
    call: Callable[[], Awaitable[None]],
    *,
    concurrency: int,
    duration_s: float,
    target: str,
    workload: str,
) -> CellResult:
    """`concurrency` callers, each issuing its next call when the last one answered, until
    `duration_s` passed. Throughput counts successful calls over the time until the last caller
    finished; latencies are of successful calls."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    clock = time.perf_counter
    started = clock()
    stop_at = started + duration_s

    async def caller() -> None:
        while clock() < stop_at:
            t0 = clock()
            try:
                await call()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                errors[describe_error(exc)] += 1
                continue
            latencies.append(clock() - t0)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    elapsed = clock() - started
    latencies.sort()
    return CellResult(
        target=target,
        workload=workload,
        concurrency=concurrency,
        duration_s=elapsed,
        ok=len(latencies),
        errors=sum(errors.values()),
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        error_kinds=errors,
    )


# --- the echo server -----------------------------------------------------------------------


def _echo_handler() -> grpc.GenericRpcHandler:
    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request

    # No (de)serialisers: the handler sees and returns raw bytes.
    return grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )


async def _serve_echo(raw_port: int, kit_port: int) -> None:
    from loopkit.grpc_server import GrpcServer
    from loopkit.telemetry import configure_telemetry

    # The same providers as a service process, so the kit interceptor's span and histogram
    # cost what they cost in the identity service.
    configure_telemetry("bench-echo")
    raw = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    raw.add_generic_rpc_handlers([_echo_handler()])
    if raw.add_insecure_port(f"127.0.0.1:{raw_port}") == 0:
        raise OSError(f"cannot listen on {raw_port}")
    kit = GrpcServer("127.0.0.1", kit_port)
    kit.add(lambda server: server.add_generic_rpc_handlers([_echo_handler()]), ["bench.Echo"])
    await raw.start()
    await kit.start()
    await kit.set_serving(True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"echo serving raw on {raw_port}, kit on {kit_port}", flush=True)
    await stop.wait()
    await kit.stop(1.0)
    await raw.stop(1.0)


def echo_argv(raw_port: int, kit_port: int) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "echo", str(raw_port), str(kit_port)]


async def wait_echo(target: str, child: ChildProcess, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with grpc.aio.insecure_channel(target) as channel:
        echo = channel.unary_unary(ECHO_METHOD)
        while True:
            child.check_alive()
            with contextlib.suppress(grpc.aio.AioRpcError):
                await echo(b"ping", timeout=1)
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"echo on {target} not answering after {timeout_s}s")
            await asyncio.sleep(0.1)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "echo":
        sys.exit("usage: _common.py echo RAW_PORT KIT_PORT")
    from loopkit.runtime import event_loop_factory

    # The event loop a service process runs on (CLOSEDLOOP_EVENT_LOOP, as loopkit.settings).
    factory = event_loop_factory(os.environ.get("CLOSEDLOOP_EVENT_LOOP", "uvloop"))
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(_serve_echo(int(sys.argv[2]), int(sys.argv[3])))
