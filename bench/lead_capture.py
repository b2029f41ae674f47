"""Lead capture end to end: H5 form submissions per second at 64 concurrent clients.

HTTP POST /v1/forms/{page}/submissions → identity ResolveCustomer (gRPC) → lead + outbox row in
one transaction → relay → JetStream, measured next to two ceilings in the same run: a bare
FastAPI endpoint that parses the same JSON body (the HTTP stack alone) and a raw JetStream
publish with ack (the event bus alone). Prints one table and the ratios, then checks that every
accepted submission reached the ACQUISITION stream as lead.captured.

It creates throwaway PostgreSQL databases (CLOSEDLOOP_BENCH_DATABASE_URL or the test URL; or
SQLite files with --sqlite), starts its own nats-server and the identity and acquisition services
as processes on free ports, and removes everything again (also on Ctrl-C).

    .venv/bin/python bench/lead_capture.py [--duration 10] [--concurrency 64] [--sqlite]
    .venv/bin/python bench/lead_capture.py --quick [--profile DIR]

`--quick`: 3 s per cell at 16 clients (the p99 goal's concurrency). `--profile DIR`: py-spy
(`.venv/bin/py-spy`, not a project dependency) samples the acquisition and identity processes
during the measured lead-capture cell and writes their collapsed stacks to DIR, then prints the
share of samples by package (bench/README.md explains the buckets).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats


def _repo() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "services.toml").exists():
            return parent
    raise RuntimeError("run from inside the ClosedLoop checkout")


REPO = _repo()
sys.path.insert(0, str(REPO / "bench"))

from _common import (  # noqa: E402
    CellResult,
    ChildProcess,
    Cleanup,
    closed_loop,
    create_database,
    database_base_url,
    drop_database,
    keyed,
    keys_env,
    new_database_name,
    start_nats,
    start_on_free_ports,
    wait_serving,
)
from _statements import SIDES, read_counts, round_trips  # noqa: E402

from closedloop.acquisition.v1 import acquisition_pb2 as pb  # noqa: E402
from closedloop.acquisition.v1 import acquisition_pb2_grpc  # noqa: E402

TENANT = "bench"
CALL_TIMEOUT_S = 10.0
# The ceiling: one process like each service, on the same event loop (uvloop), HTTP protocol
# (the kit's httptools one, one send() per answer) and log level, no access log.
BARE_APP = """
import sys, uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from loopkit.ops_http import HTTP_PROTOCOL
app = FastAPI()
@app.post("/v1/forms/{page_id}/submissions")
async def submit(page_id: str, request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse({"lead_id": page_id, "repeat": False, "n": len(body)}, status_code=201)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False,
            loop="uvloop", http=HTTP_PROTOCOL)
"""


def _service_env(
    name: str, database_url: str, nats_url: str, state: Path, **more: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOSEDLOOP_")}
    # The one setting passed through: which event loop the services run on (A/B runs).
    if "CLOSEDLOOP_EVENT_LOOP" in os.environ:
        env["CLOSEDLOOP_EVENT_LOOP"] = os.environ["CLOSEDLOOP_EVENT_LOOP"]
    prefix = f"CLOSEDLOOP_{name.upper()}_"
    env.update(
        {
            "CLOSEDLOOP_DATABASE_URL": database_url,
            "CLOSEDLOOP_NATS_URL": nats_url,
            "CLOSEDLOOP_STATE_DIR": str(state),
            "CLOSEDLOOP_LOG_LEVEL": "WARNING",
            f"{prefix}GRPC_PORT": more.pop("grpc_port"),
            f"{prefix}HTTP_PORT": more.pop("http_port"),
            **keys_env(),
        }
    )
    env.update({f"CLOSEDLOOP_{k.upper()}": v for k, v in more.items()})
    return env


async def _wait_http(url: str, child: ChildProcess, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as http:
        while True:
            child.check_alive()
            try:
                await http.post(url, json={})
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{url} not answering after {timeout_s}s") from None
                await asyncio.sleep(0.1)


@dataclass
class Stack:
    nats_url: str
    identity_grpc: str
    acquisition_grpc: str
    acquisition_http: str
    bare_http: str


def _database(args: argparse.Namespace, cleanup: Cleanup, state: Path, name: str) -> str:
    if args.sqlite:
        return f"sqlite+aiosqlite:///{state}/{name}.db"
    base = database_base_url()
    db = new_database_name(f"bench_{name}")
    url = asyncio.run(create_database(base, db))

    def drop() -> None:
        asyncio.run(drop_database(base, db))

    cleanup.push(f"database {db}", drop)
    return url


def _start_service(
    name: str, env_on: Callable[[list[int]], dict[str, str]], state: Path, cleanup: Cleanup
) -> tuple[ChildProcess, list[int]]:
    """The service migrated, then running on free (gRPC, HTTP) ports `env_on(ports)` names,
    listening on them."""
    env = env_on([0, 0])
    services_file = state / "services.toml"
    services_file.write_text(
        '[services.identity]\nmodule = "closedloop_identity"\n\n'
        '[services.acquisition]\nmodule = "closedloop_acquisition"\n'
    )
    migrate = ChildProcess(
        f"{name}-migrate",
        [sys.executable, "-m", "loopkit.cli", "migrate", name],
        log_path=state / f"{name}-migrate.log",
        env={**env, "CLOSEDLOOP_SERVICES_FILE": str(services_file)},
        cwd=REPO,
    )
    if migrate.proc.wait(120) != 0:
        raise RuntimeError(f"migrating {name} failed:\n{migrate.log_tail()}")
    # Run through bench/_statements.py, which counts the service's database round trips.
    counting = [str(REPO / "bench" / "_statements.py"), str(state / f"{name}.counts")]

    def start(ports: list[int]) -> ChildProcess:
        return ChildProcess(
            name,
            [sys.executable, *counting, "-m", f"closedloop_{name}"],
            log_path=state / f"{name}.log",
            env=env_on(ports),
            cwd=REPO,
        )

    child, ports = asyncio.run(start_on_free_ports(name, 2, start))
    cleanup.push(name, child.stop)
    return child, ports


def start_stack(args: argparse.Namespace, cleanup: Cleanup) -> tuple[Stack, list[ChildProcess]]:
    """nats-server, identity, acquisition and the bare FastAPI app, each a process of its own."""
    state = Path(tempfile.mkdtemp(prefix="closedloop-bench-leads-"))
    cleanup.push("state folder", lambda: shutil.rmtree(state, ignore_errors=True))
    natsd = asyncio.run(start_nats(state / "nats", sync_always=False))
    cleanup.push("nats-server", natsd.stop)
    ports: dict[str, list[int]] = {}
    children = []
    for name in ("identity", "acquisition"):
        # Acquisition calls identity: started second, on the port identity got.
        extra = (
            {"identity_url": f"127.0.0.1:{ports['identity'][0]}"} if name == "acquisition" else {}
        )
        database_url = _database(args, cleanup, state, name)

        def env_on(
            chosen: list[int], name: str = name, url: str = database_url, extra: Any = extra
        ) -> dict[str, str]:
            grpc_port, http_port = (str(p) for p in chosen)
            return _service_env(
                name, url, natsd.url, state, grpc_port=grpc_port, http_port=http_port, **extra
            )

        child, ports[name] = _start_service(name, env_on, state, cleanup)
        children.append(child)

    def start_bare(chosen: list[int]) -> ChildProcess:
        return ChildProcess(
            "bare-fastapi",
            [sys.executable, "-c", BARE_APP, str(chosen[0])],
            log_path=state / "bare.log",
            env=dict(os.environ),
            cwd=REPO,
        )

    bare, (bare_port,) = asyncio.run(start_on_free_ports("bare-fastapi", 1, start_bare))
    cleanup.push("bare-fastapi", bare.stop)
    children.append(bare)
    stack = Stack(
        nats_url=natsd.url,
        identity_grpc=f"127.0.0.1:{ports['identity'][0]}",
        acquisition_grpc=f"127.0.0.1:{ports['acquisition'][0]}",
        acquisition_http=f"http://127.0.0.1:{ports['acquisition'][1]}",
        bare_http=f"http://127.0.0.1:{bare_port}",
    )
    return stack, children


async def create_page(stack: Stack) -> str:
    async with keyed(stack.acquisition_grpc) as channel:
        stub = acquisition_pb2_grpc.AcquisitionServiceStub(channel)  # type: ignore[no-untyped-call]
        campaign = await stub.CreateCampaign(
            pb.CreateCampaignRequest(tenant_id=TENANT, name="bench")
        )
        page = await stub.CreateLandingPage(
            pb.CreateLandingPageRequest(
                tenant_id=TENANT,
                campaign_id=campaign.campaign.campaign_id,
                title="bench",
                fields=[
                    pb.FormField(name="name", type=pb.FIELD_TYPE_NAME, required=True),
                    pb.FormField(name="phone", type=pb.FIELD_TYPE_PHONE, required=True),
                ],
            )
        )
    return str(page.page.page_id)


class KeepAliveClient:
    """A minimal HTTP/1.1 client, one keep-alive connection per caller: light enough that the
    servers, not the load generator, are what is measured (httpx costs more CPU per call than the
    bare endpoint it would measure)."""

    def __init__(self, base: str) -> None:
        url = httpx.URL(base)
        self._host, self._port = url.host, url.port or 80
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post_json(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self._idle:
            reader, writer = self._idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self._host, self._port)
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self._host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CALL_TIMEOUT_S)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
        content = await reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            writer.close()
        else:
            self._idle.append((reader, writer))
        return status, content

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()


async def submissions(
    base: str,
    page_id: str,
    target: str,
    args: argparse.Namespace,
    measured: Callable[[], None] | None = None,
) -> CellResult:
    """Form submissions with a new phone each (a new customer and a new lead every time)."""
    phones = itertools.count(uuid.uuid4().int % 10**7 * 10)
    client = KeepAliveClient(base)
    path = f"/v1/forms/{page_id}/submissions"

    async def call() -> None:
        phone = f"139{next(phones) % 10**8:08d}"
        body = json.dumps({"values": {"name": "Bench", "phone": phone}}).encode()
        status, content = await client.post_json(path, body)
        if status != 201:
            raise RuntimeError(f"HTTP {status}: {content[:100]!r}")

    try:
        await closed_loop(
            call,
            concurrency=args.concurrency,
            duration_s=min(1.0, args.duration),
            target=target,
            workload="warm-up",
        )
        if measured is not None:
            measured()
        return await closed_loop(
            call,
            concurrency=args.concurrency,
            duration_s=args.duration,
            target=target,
            workload="form submission",
        )
    finally:
        client.close()


async def raw_publish(stack: Stack, args: argparse.Namespace) -> CellResult:
    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="BENCHRAW", subjects=["bench.raw"])
        payload = b"x" * 400  # about a LeadCaptured envelope

        async def publish() -> None:
            await js.publish("bench.raw", payload, timeout=CALL_TIMEOUT_S)

        return await closed_loop(
            publish,
            concurrency=args.concurrency,
            duration_s=args.duration,
            target="raw JetStream",
            workload="publish + ack",
        )
    finally:
        await nc.close()


def cpu_seconds(child: ChildProcess) -> float:
    """User + system CPU time the process used so far (Linux /proc)."""
    fields = Path(f"/proc/{child.proc.pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# CPU milliseconds per call of each measured cell, by process: what bounds throughput on a busy
# machine (the req/s of a loaded 2-core box mostly shows how much CPU the others left).
CPU_PER_CALL: dict[str, dict[str, float]] = {}


async def cpu_cell(
    target: str,
    processes: list[ChildProcess],
    work: Callable[[Callable[[], None]], Awaitable[CellResult]],
    then: Callable[[], None] | None = None,
) -> CellResult:
    """Runs `work`, which calls its argument when the measured part starts (after warm-up)."""
    before: dict[str, float] = {}

    def start() -> None:
        before.update({c.name: cpu_seconds(c) for c in processes})
        if then is not None:
            then()

    result = await work(start)
    calls = max(result.ok + result.errors, 1)
    CPU_PER_CALL[target] = {
        c.name: (cpu_seconds(c) - before[c.name]) * 1000 / calls for c in processes
    }
    return result


async def lead_cell(
    stack: Stack, children: list[ChildProcess], page_id: str, args: argparse.Namespace
) -> CellResult:
    profiles: list[Any] = []
    services = children[:2]
    before: dict[str, Counter[str]] = {}

    def profile() -> None:
        before.update({c.name: read_counts(counts_path(c), c.proc.pid) for c in services})
        profiles.extend(start_profiles(children, args))

    result = await cpu_cell(
        "lead capture",
        services,
        lambda start: submissions(stack.acquisition_http, page_id, "lead capture", args, start),
        profile,
    )
    calls = max(result.ok + result.errors, 1)
    for child in services:
        after = await asyncio.to_thread(read_counts, counts_path(child), child.proc.pid)
        spent = after - before[child.name]
        ROUND_TRIPS[child.name] = {side: round_trips(spent, side) / calls for side in SIDES}
        GC_PAUSES[child.name] = (
            [(spent[f"gc {g}"], spent[f"gc {g} us"] / 1000) for g in range(3)],
            after["gc max us"] / 1000,
        )
    await asyncio.to_thread(report_profiles, profiles, args)
    return result


# Database round trips per lead of the measured cell, by service and side (request, relay).
ROUND_TRIPS: dict[str, dict[str, float]] = {}
# The cyclic GC in the measured cell, by service: (collections, ms paused) per generation, and
# the longest pause (ms).
GC_PAUSES: dict[str, tuple[list[tuple[int, float]], float]] = {}


def counts_path(child: ChildProcess) -> Path:
    return Path(str(child.proc.args[2]))  # type: ignore[index]


async def leads_on_stream(stack: Stack, at_least: int, timeout_s: float = 60.0) -> int:
    """lead.captured messages on ACQUISITION, once the relay caught up (or the timeout)."""
    nc = await nats.connect(stack.nats_url)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + timeout_s
        while True:
            info = await js.stream_info(
                "ACQUISITION", subjects_filter="closedloop.acquisition.lead.captured"
            )
            count = int(info.state.messages)
            if count >= at_least or time.monotonic() > deadline:
                return count
            await asyncio.sleep(0.2)
    finally:
        await nc.close()


def start_profiles(children: list[ChildProcess], args: argparse.Namespace) -> list[Any]:
    """py-spy on the acquisition and identity processes for the measured cell."""
    if not args.profile:
        return []
    out = Path(args.profile)
    out.mkdir(parents=True, exist_ok=True)
    spy = REPO / ".venv" / "bin" / "py-spy"
    seconds = str(max(1, int(args.duration)))
    profiles = []
    for child in children[:2]:
        cmd = [str(spy), "record", "--pid", str(child.proc.pid), "--duration", seconds]
        cmd += ["--rate", "200", "--format", "raw", "--nonblocking"]
        cmd += ["--output", str(out / f"{child.name}.txt")]
        log = (out / f"{child.name}.py-spy.log").open("w")
        profiles.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
    return profiles


# Where a sampled stack's time goes: the innermost frame whose file matches, first rule first.
BUCKETS = (
    ("telemetry (OpenTelemetry, FastAPI's)", ("telemetry",)),
    ("asyncpg", ("(asyncpg/",)),
    ("SQLAlchemy ORM", ("(sqlalchemy/orm/",)),
    ("SQLAlchemy core/pool", ("(sqlalchemy/",)),
    ("gRPC/protobuf", ("(grpc/", "_pb2", "(google/protobuf")),
    ("NATS", ("(nats/",)),
    ("FastAPI/Starlette/pydantic/uvicorn", ("(fastapi/", "(starlette/", "(pydantic", "(uvicorn/")),
    ("our code (services, loopkit)", ("(closedloop_", "(loopkit/")),
    ("asyncio/stdlib", ("(asyncio/", "<frozen", "(python3.11/", "(json/", "(logging/")),
)


def summarise(path: Path) -> list[tuple[str, float]]:
    """Share of samples per bucket (innermost matching frame) of a py-spy raw profile."""
    totals: dict[str, int] = {}
    all_samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        all_samples += n
        bucket = "other"
        for frame in reversed(stack.split(";")):
            found = next((b for b, keys in BUCKETS if any(k in frame for k in keys)), None)
            if found is not None:
                bucket = found
                break
        if "(idle)" in stack or "select (selectors.py" in stack.rsplit(";", 1)[-1]:
            bucket = "idle (waiting in the event loop)"
        totals[bucket] = totals.get(bucket, 0) + n
    return sorted(((b, n / max(all_samples, 1)) for b, n in totals.items()), key=lambda x: -x[1])


def report_profiles(profiles: list[Any], args: argparse.Namespace) -> None:
    for proc in profiles:
        proc.wait(60)
    if not args.profile:
        return
    for name in ("acquisition", "identity"):
        path = Path(args.profile) / f"{name}.txt"
        if not path.exists():
            print(f"no profile of {name} (see {path.with_suffix('.py-spy.log')})")
            continue
        print(f"\nprofile of {name} (share of samples, innermost frame):")
        for bucket, share in summarise(path):
            print(f"  {bucket:<40} {share:6.1%}")


async def run(
    stack: Stack, children: list[ChildProcess], args: argparse.Namespace
) -> list[CellResult]:
    await wait_serving(stack.identity_grpc, children[0])
    await wait_serving(stack.acquisition_grpc, children[1])
    await _wait_http(f"{stack.bare_http}/v1/forms/x/submissions", children[2])
    page_id = await create_page(stack)
    results = [
        await cpu_cell(
            "bare FastAPI",
            children[2:3],
            lambda start: submissions(stack.bare_http, page_id, "bare FastAPI", args, start),
        ),
        await lead_cell(stack, children, page_id, args),
        await raw_publish(stack, args),
    ]
    measured = results[1].ok
    on_stream = await leads_on_stream(stack, measured)
    print(
        f"lead.captured on the ACQUISITION stream: {on_stream} (measured submissions: {measured})"
    )
    if on_stream < measured:
        raise RuntimeError("some accepted submissions never reached JetStream")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--sqlite", action="store_true", help="SQLite files instead of PostgreSQL")
    parser.add_argument("--quick", action="store_true", help="3 s per cell at 16 clients")
    parser.add_argument("--smoke", action="store_true", help="0.5 s per cell at 4 clients")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the services into DIR")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.concurrency = 3.0, 16
    if args.smoke:
        args.duration, args.concurrency = 0.5, 4
    cleanup = Cleanup()
    try:
        stack, children = start_stack(args, cleanup)
        results = asyncio.run(run(stack, children, args))
    finally:
        cleanup.run()
    header = ("target", "workload", "conc", "ok", "err", "rps", "p50 ms", "p99 ms")
    print("\n{:<14} {:<16} {:>4} {:>7} {:>5} {:>9} {:>8} {:>8}".format(*header))
    for r in results:
        print(
            f"{r.target:<14} {r.workload:<16} {r.concurrency:>4} {r.ok:>7} {r.errors:>5} "
            f"{r.rps:>9.1f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f}"
        )
        for kind, n in r.error_kinds.most_common(3):
            print(f"    {n} x {kind}")
    print("\nCPU ms per call of the measured part, by process (py-spy, if on, adds a little):")
    for target, per in CPU_PER_CALL.items():
        parts = ", ".join(f"{name} {ms:.2f}" for name, ms in per.items())
        print(f"  {target:<14} {sum(per.values()):7.2f}  ({parts})")
    if ROUND_TRIPS:
        print("\nDatabase round trips per lead (bench/_statements.py; the relay's passes apart):")
        for name, sides in ROUND_TRIPS.items():
            print(f"  {name:<12} " + ", ".join(f"{k} {v:.2f}" for k, v in sides.items()))
        print("GC collections in the lead cell (generation: count / ms paused; longest pause):")
        for name, (gens, longest) in GC_PAUSES.items():
            parts = ", ".join(f"{g}: {n} / {ms:.1f}" for g, (n, ms) in enumerate(gens))
            print(f"  {name:<12} {parts}; longest {longest:.1f} ms")
    by = {r.target: r.rps for r in results}
    lead = by.get("lead capture", 0.0)
    if lead:
        print(f"\nbare FastAPI / lead capture: {by['bare FastAPI'] / lead:.1f}x")
        print(f"raw JetStream / lead capture: {by['raw JetStream'] / lead:.1f}x")
        p99 = next(r.p99_ms for r in results if r.target == "lead capture")
        print(f"ratio lead_capture_vs_bare {lead / by['bare FastAPI']:.3f} goal 0.25")
        print(f"ratio lead_capture_p99_ms_x {p99:.1f} goal 50 (at c={args.concurrency})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
