"""ResolveCustomer throughput and latency against PostgreSQL, next to a gRPC echo ceiling.

`make bench` runs it. It creates a throwaway PostgreSQL database, starts its own nats-server and
the identity service (`python -m closedloop_identity`, a separate process on free ports) plus an
echo server process, drives each with a closed-loop load for `--duration` seconds per cell at each
`--concurrency`, prints one table, checks that every event the calls wrote reached the IDENTITY
stream, and removes the processes and the database again (also on Ctrl-C). See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import grpc
import nats
from _common import (
    ECHO_METHOD,
    CellResult,
    ChildProcess,
    Cleanup,
    accepted_connections,
    closed_loop,
    cpu_seconds,
    cpu_spent,
    create_database,
    database_base_url,
    drop_database,
    echo_argv,
    keyed,
    keys_env,
    new_database_name,
    start_nats,
    start_on_free_ports,
    wait_echo,
    wait_listeners,
    wait_serving,
)
from _statements import SIDES, read_counts, round_trips
from nats.aio.client import Client
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from closedloop.common.v1 import common_pb2 as c
from closedloop.identity.v1 import identity_pb2 as pb
from closedloop.identity.v1 import identity_pb2_grpc
from closedloop_identity.main import DEFINITION
from loopkit import migrations
from loopkit.events import SUBJECT_ROOT, stream_for
from loopkit_dev.natsserver import NatsServer

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
TENANT = "bench"
APP = "wx-bench-app"
STREAM = stream_for(DEFINITION.spec.name)
CALL_TIMEOUT_S = 10.0
ECHO_PAYLOAD = bytes(range(64))  # about the size of a one-identity ResolveCustomerRequest
# Settings the bench sets itself; inherited values of these would point the service elsewhere.
_OWN_SETTINGS = (
    "database_url",
    "nats_url",
    "grpc_host",
    "grpc_port",
    "http_host",
    "http_port",
    "api_token",
    "state_dir",
)


class Anomaly(Exception):
    """A call that succeeded but answered something a correct service would not."""


# --- output --------------------------------------------------------------------------------


class Report:
    """Human-readable lines go to stdout, or to stderr when the JSON document takes stdout."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def __call__(self, line: str = "") -> None:
        print(line, file=self._stream, flush=True)


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


# --- the identity workloads ----------------------------------------------------------------


def _openid(value: str) -> c.Identity:
    return c.Identity(kind=c.IDENTITY_KIND_WECHAT_OPENID, scope=APP, value=value)


def _unionid(value: str) -> c.Identity:
    return c.Identity(kind=c.IDENTITY_KIND_WECHAT_UNIONID, value=value)


def _request(*identities: c.Identity) -> pb.ResolveCustomerRequest:
    return pb.ResolveCustomerRequest(tenant_id=TENANT, identities=identities, actor="bench")


@dataclass
class IdentityWorkloads:
    """The three ResolveCustomer workloads and what they should have written.

    `created` and `linked` count successful answers, so `created + linked` is the number of events
    the service must have put on the stream (customer.created, customer.identity_linked).
    """

    stub: identity_pb2_grpc.IdentityServiceStub
    run_id: str
    created: int = 0
    linked: int = 0
    reused_for_attach: int = 0
    known: list[tuple[str, str]] = field(default_factory=list)  # (openid, customer id)
    without_unionid: deque[tuple[str, str]] = field(default_factory=deque)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    async def new_customer(self) -> None:
        """(a) A first-time openid: creates a customer, writes customer.created."""
        openid = f"o-{self.run_id}-{next(self._seq)}"
        reply = await self.stub.ResolveCustomer(_request(_openid(openid)), timeout=CALL_TIMEOUT_S)
        if not reply.created:
            raise Anomaly(f"new openid {openid} answered created=false")
        self.created += 1
        entry = (openid, reply.customer.customer_id)
        self.known.append(entry)
        self.without_unionid.append(entry)

    async def repeat(self) -> None:
        """(b) A known openid again: finds its customer, writes nothing."""
        openid, customer_id = random.choice(self.known)
        reply = await self.stub.ResolveCustomer(_request(_openid(openid)), timeout=CALL_TIMEOUT_S)
        if reply.created:
            self.created += 1
            raise Anomaly(f"known openid {openid} created another customer")
        if reply.customer.customer_id != customer_id:
            raise Anomaly(f"known openid {openid} resolved to another customer")

    async def attach(self) -> None:
        """(c) A known openid with a new unionid: attaches it, writes customer.identity_linked.

        Each customer gets one unionid while customers without one remain; after that customers
        are reused and get another (still one attach and one event per call)."""
        if self.without_unionid:
            openid, customer_id = self.without_unionid.popleft()
        else:
            openid, customer_id = random.choice(self.known)
            self.reused_for_attach += 1
        unionid = f"u-{self.run_id}-{next(self._seq)}"
        reply = await self.stub.ResolveCustomer(
            _request(_openid(openid), _unionid(unionid)), timeout=CALL_TIMEOUT_S
        )
        if reply.created:
            self.created += 1
            raise Anomaly(f"known openid {openid} with a new unionid created a customer")
        self.linked += 1
        if reply.customer.customer_id != customer_id:
            raise Anomaly(f"known openid {openid} with a new unionid answered another customer")
        if not any(i.value == unionid for i in reply.customer.identities):
            raise Anomaly("the new unionid is missing from the answer")


def echo_call(channel: grpc.aio.Channel) -> Callable[[], Awaitable[None]]:
    method = channel.unary_unary(ECHO_METHOD)

    async def call() -> None:
        if await method(ECHO_PAYLOAD, timeout=CALL_TIMEOUT_S) != ECHO_PAYLOAD:
            raise Anomaly("echo answered other bytes")

    return call


# --- what the service wrote and relayed ----------------------------------------------------


@dataclass
class EventState:
    outbox_rows: int
    unpublished: int
    on_stream: int
    customers: int
    identities: int


async def event_state(engine: AsyncEngine, js: Any) -> EventState:
    async with engine.connect() as conn:
        rows, unpublished = (
            await conn.execute(
                text("SELECT count(*), count(*) FILTER (WHERE published_at IS NULL) FROM outbox")
            )
        ).one()
        customers = (await conn.execute(text("SELECT count(*) FROM customers"))).scalar_one()
        identities = (await conn.execute(text("SELECT count(*) FROM identities"))).scalar_one()
    info = await js.stream_info(STREAM)
    return EventState(rows, unpublished, info.state.messages, customers, identities)


def server_metrics(http_port: int) -> dict[str, float]:
    """The service's own counts from /metrics: ResolveCustomer calls by status, events relayed."""
    url = f"http://127.0.0.1:{http_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = response.read().decode()
    found: dict[str, float] = {}
    call = re.compile(
        r"^closedloop_grpc_server_duration(?:_seconds)?_count\{"
        r'(?=[^}]*rpc_method="[^"]*/ResolveCustomer")'
        r'[^}]*rpc_grpc_status_code="(\w+)"[^}]*\} (\S+)$'
    )
    for line in body.splitlines():
        if match := call.match(line):
            key = f"ResolveCustomer {match.group(1)}"
            found[key] = found.get(key, 0.0) + float(match.group(2))
        elif line.startswith("closedloop_outbox_published_total"):
            found["outbox published"] = found.get("outbox published", 0.0) + float(line.split()[-1])
        elif line.startswith("closedloop_outbox_duplicates_total"):
            found["outbox duplicates"] = found.get("outbox duplicates", 0.0) + float(
                line.split()[-1]
            )
    return found


def log_problems(path: Path) -> Counter[str]:
    """Warnings, errors and non-JSON lines (tracebacks) in a service's JSON log."""
    problems: Counter[str] = Counter()
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return problems
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            if line.strip():
                problems[f"(not JSON) {line.strip()[:200]}"] += 1
            continue
        if not isinstance(entry, dict):
            continue
        level = str(entry.get("level", ""))
        if level in ("warning", "error", "critical"):
            message = str(entry.get("msg", ""))[:200]
            exc = str(entry.get("exc", "")).strip().splitlines()
            tail = f" | {exc[-1][:200]}" if exc else ""
            problems[f"{level} {entry.get('logger', '')}: {message}{tail}"] += 1
    return problems


# --- the run -------------------------------------------------------------------------------


@dataclass
class Cell:
    label: str  # shown in the table
    target: str
    workload: str
    call: Callable[[], Awaitable[None]]
    identity: bool


@dataclass
class Measured:
    cell: Cell
    result: CellResult
    state: EventState | None  # identity cells: the outbox right after the cell
    # Identity cells: database round trips per call, by side (request, relay), from the service.
    round_trips: dict[str, float] = field(default_factory=dict)
    statements: dict[str, float] = field(default_factory=dict)
    # CPU milliseconds the serving process spent per call (identity cells: its relay included).
    cpu_ms: float | None = None


@dataclass
class Events:
    state: EventState
    by_subject: dict[str, int]
    drained_s: float
    metrics: dict[str, float]


@dataclass
class Stack:
    """Every process the run started, ready to take calls."""

    database: str
    database_url: str
    workdir: Path
    natsd: NatsServer
    echo: ChildProcess
    identity: ChildProcess
    raw_target: str
    kit_target: str
    identity_target: str
    http_port: int
    counts_path: Path
    inherited: list[str]
    setup_s: float


def child_env(
    nats_url: str, database_url: str, grpc_port: int, http_port: int, state: Path
) -> dict[str, str]:
    service = DEFINITION.spec.name.upper()
    env = {
        k: v
        for k, v in os.environ.items()
        if not any(
            k in (f"CLOSEDLOOP_{s.upper()}", f"CLOSEDLOOP_{service}_{s.upper()}")
            for s in _OWN_SETTINGS
        )
    }
    env.update(
        {
            "CLOSEDLOOP_DATABASE_URL": database_url,
            "CLOSEDLOOP_NATS_URL": nats_url,
            f"CLOSEDLOOP_{service}_GRPC_PORT": str(grpc_port),
            f"CLOSEDLOOP_{service}_HTTP_PORT": str(http_port),
            "CLOSEDLOOP_STATE_DIR": str(state),
            "CLOSEDLOOP_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
            **keys_env(),
        }
    )
    return env


async def start_stack(cleanup: Cleanup) -> Stack:
    """Database (created, migrated), nats-server, identity service and echo server."""
    started = time.perf_counter()
    base_url = database_base_url()
    workdir = Path(tempfile.mkdtemp(prefix="closedloop-bench-"))
    cleanup.push("remove work dir", lambda: shutil.rmtree(workdir, ignore_errors=True))

    # The echo server first: it is ready long before the migrations are done.
    children: list[ChildProcess] = []  # every one started, stopped at the end (once stopped: no-op)
    cleanup.push("stop echo server and identity service", lambda: [c.stop() for c in children])

    def start_echo(ports: list[int]) -> ChildProcess:
        log = workdir / "echo.log"
        children.append(
            ChildProcess(
                "echo server", echo_argv(*ports), log_path=log, env={**os.environ}, cwd=REPO
            )
        )
        return children[-1]

    echo_started = asyncio.create_task(start_on_free_ports("echo server", 2, start_echo))

    name = new_database_name("closedloop_bench")
    unreachable = False  # then there is nothing to drop (an interrupted CREATE may have run)

    def drop() -> None:
        if not unreachable:
            asyncio.run(drop_database(base_url, name))

    cleanup.push(f"drop database {name}", drop)
    try:
        database_url = await create_database(base_url, name)
    except (OSError, SQLAlchemyError) as exc:
        unreachable = True
        shown = make_url(base_url).render_as_string(hide_password=True)
        raise SystemExit(f"PostgreSQL unavailable at {shown}: {exc}") from None
    await asyncio.to_thread(
        migrations.upgrade, DEFINITION.migrations_dir, database_url, service="identity"
    )

    natsd = await start_nats(workdir / "nats")  # sync_interval: always, as deployed
    cleanup.push("stop nats-server", natsd.stop)
    cleanup.push("stop identity service", lambda: [c.stop() for c in children])

    counts_path = workdir / "statements.json"
    envs: list[dict[str, str]] = []

    def start_identity(ports: list[int]) -> ChildProcess:
        envs.append(child_env(natsd.url, database_url, ports[0], ports[1], workdir / "state"))
        children.append(
            ChildProcess(
                "identity service",
                [
                    sys.executable,
                    str(BENCH / "_statements.py"),
                    str(counts_path),
                    "-m",
                    DEFINITION.spec.module,
                ],
                log_path=workdir / "identity.log",
                env=envs[-1],
                cwd=REPO,
            )
        )
        return children[-1]

    identity, (grpc_port, http_port) = await start_on_free_ports(
        "identity service", 2, start_identity
    )
    env = envs[-1]
    echo, (raw_port, kit_port) = await echo_started
    stack = Stack(
        database=name,
        database_url=database_url,
        workdir=workdir,
        natsd=natsd,
        echo=echo,
        identity=identity,
        raw_target=f"127.0.0.1:{raw_port}",
        kit_target=f"127.0.0.1:{kit_port}",
        identity_target=f"127.0.0.1:{grpc_port}",
        http_port=http_port,
        counts_path=counts_path,
        inherited=sorted(
            k
            for k in env
            if k.startswith("CLOSEDLOOP_")
            and os.environ.get(k) == env[k]
            and not k.startswith(("CLOSEDLOOP_BENCH_", "CLOSEDLOOP_TEST_", "CLOSEDLOOP_REQUIRE_"))
        ),
        setup_s=0.0,
    )
    await asyncio.gather(
        wait_serving(stack.identity_target, identity, 60.0),
        # As long as the service: on a loaded machine the echo process took over 15 s to start.
        wait_echo(stack.raw_target, echo, 60.0),
        wait_echo(stack.kit_target, echo, 60.0),
    )
    stack.setup_s = time.perf_counter() - started
    return stack


async def drained(engine: AsyncEngine, js: Any, timeout_s: float = 15.0) -> EventState:
    """The outbox state once the relay published everything (or the timeout passed)."""
    deadline = time.perf_counter() + timeout_s
    state = await event_state(engine, js)
    while state.unpublished and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
        state = await event_state(engine, js)
    return state


async def measure(
    cells: list[Cell],
    *,
    args: argparse.Namespace,
    warmup_s: float,
    engine: AsyncEngine,
    js: Any,
    stack: Stack,
    out: Report,
) -> list[Measured]:
    measured = []
    pid = stack.identity.proc.pid
    for cell in cells:
        server = pid if cell.identity else stack.echo.proc.pid
        for conc in args.concurrency:
            # Warm-up: connections (gRPC, the service's database pool) open, caches fill.
            await closed_loop(
                cell.call,
                concurrency=conc,
                duration_s=warmup_s,
                target=cell.target,
                workload=cell.workload,
            )
            if cell.identity:  # the warm-up's events relayed, so its statements are not counted
                await drained(engine, js)
                before = await asyncio.to_thread(read_counts, stack.counts_path, pid)
            cpu0 = cpu_seconds([server]).get(server, 0.0)
            result = await closed_loop(
                cell.call,
                concurrency=conc,
                duration_s=args.duration,
                target=cell.target,
                workload=cell.workload,
            )
            m = Measured(cell, result, None)
            calls = max(1, result.ok + result.errors)
            if cell.identity:
                m.state = await event_state(engine, js)
                await drained(engine, js)  # the relay's statements for this cell's events
                after = await asyncio.to_thread(read_counts, stack.counts_path, pid)
                after.subtract(before)
                m.round_trips = {side: round_trips(after, side) / calls for side in SIDES}
                m.statements = {side: after[f"{side} statements"] / calls for side in SIDES}
            m.cpu_ms = (cpu_seconds([server]).get(server, 0.0) - cpu0) * 1000 / calls
            measured.append(m)
            backlog = f", outbox backlog {m.state.unpublished}" if m.state else ""
            trips = f", round trips/call {sum(m.round_trips.values()):.1f}" if m.round_trips else ""
            out(
                f"  {cell.label:<24} c={conc:<3} {result.rps:8.1f} req/s  "
                f"p50 {_ms(result.p50_ms)} ms  p99 {_ms(result.p99_ms)} ms  "
                f"errors {result.errors}{backlog}{trips}"
            )
    return measured


async def settle_events(engine: AsyncEngine, js: Any, http_port: int) -> Events:
    """Wait (at most 30 s) for the relay to publish what the last calls wrote."""
    load_ended = time.perf_counter()
    state = await event_state(engine, js)
    while (state.unpublished or state.on_stream < state.outbox_rows) and (
        time.perf_counter() - load_ended < 30
    ):
        await asyncio.sleep(0.05)
        state = await event_state(engine, js)
    drained_s = time.perf_counter() - load_ended
    by_subject = (await js.stream_info(STREAM, subjects_filter=">")).state.subjects or {}
    metrics = await asyncio.to_thread(server_metrics, http_port)
    return Events(state, dict(by_subject), drained_s, metrics)


def ratio_to_echo(measured: list[Measured], m: Measured) -> float | None:
    ceiling = {x.result.concurrency: x.result.rps for x in measured if x.cell.workload == "raw"}
    top = ceiling.get(m.result.concurrency)
    if m.cell.workload == "raw" or not top:
        return None
    return m.result.rps / top


def print_table(measured: list[Measured], out: Report) -> None:
    header = (
        f"{'target':<9} {'workload':<24} {'conc':>4} {'ok':>7} {'errors':>6} {'req/s':>8} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'vs echo':>7} {'backlog':>7} {'cpu ms':>6}"
    )
    out(header)
    out("-" * len(header))
    for m in measured:
        r, ratio = m.result, ratio_to_echo(measured, m)
        out(
            f"{m.cell.target:<9} {m.cell.label:<24} {r.concurrency:>4} {r.ok:>7} {r.errors:>6} "
            f"{r.rps:>8.1f} {_ms(r.p50_ms):>7} {_ms(r.p99_ms):>7} "
            f"{'-' if ratio is None else f'{ratio:.2f}':>7} "
            f"{m.state.unpublished if m.state else '-':>7} "
            f"{'-' if m.cpu_ms is None else f'{m.cpu_ms:.2f}':>6}"
        )
    out(
        "vs echo = req/s over the bare grpc.aio echo at the same concurrency; backlog = outbox "
        "rows not yet on the stream when the cell ended; cpu ms = CPU time of the serving "
        "process per call (echo: the one process serving both echoes; identity: with its relay)."
    )
    errored = [m for m in measured if m.result.error_kinds]
    if errored:
        out()
        out("Errors:")
        for m in errored:
            for message, count in m.result.error_kinds.most_common(5):
                out(f"  {m.cell.label} c={m.result.concurrency}: {count} x {message}")


def print_round_trips(measured: list[Measured], out: Report) -> None:
    out("Database round trips per call, counted in the service (bench/_statements.py):")
    out(
        f"  {'workload':<24} {'conc':>4} {'request':>8} {'(stmts)':>8} {'relay':>7} "
        f"{'(stmts)':>8} {'total':>7}"
    )
    for m in measured:
        if not m.round_trips:
            continue
        rt, st = m.round_trips, m.statements
        out(
            f"  {m.cell.label:<24} {m.result.concurrency:>4} {rt['request']:>8.2f} "
            f"{st['request']:>8.2f} {rt['relay']:>7.2f} {st['relay']:>8.2f} "
            f"{rt['request'] + rt['relay']:>7.2f}"
        )
    out(
        "  round trips = SQL statements + BEGIN and COMMIT of each transaction + pool pre-pings; "
        "(stmts) = SQL statements alone; relay = the outbox relay's share per call"
    )


GOAL_VS_KIT_ECHO = 0.4
GOAL_P99_MS = 10.0
GOAL_STATEMENTS_NEW = 4.0
WORKLOAD_NAMES = {"new": "resolve_new", "repeat": "resolve_repeat", "attach": "resolve_attach"}


def goals(measured: list[Measured], out: Report) -> list[dict[str, Any]]:
    """One `ratio <name> <value> goal <value>` line per goal of issue #12 (a name ending in _x is
    lower-is-better)."""
    kit = {m.result.concurrency: m.result.rps for m in measured if m.cell.workload == "kit"}
    levels = sorted({m.result.concurrency for m in measured})
    high = 64 if 64 in levels else levels[-1]
    lines: list[dict[str, Any]] = []

    def line(name: str, value: float, goal: float) -> None:
        lines.append({"name": name, "value": round(value, 3), "goal": goal})
        out(f"ratio {name} {value:.3f} goal {goal:g}")

    for m in measured:
        name = WORKLOAD_NAMES.get(m.cell.workload)
        if name is None:
            continue
        c = m.result.concurrency
        if c == high and kit.get(c):
            line(f"{name}_vs_kit_echo_c{c}", m.result.rps / kit[c], GOAL_VS_KIT_ECHO)
        if c == 8:
            line(f"{name}_p99_ms_c8_x", m.result.p99_ms, GOAL_P99_MS)
        if m.cell.workload == "new" and c == levels[0]:
            line(f"{name}_statements_x", m.round_trips["request"], GOAL_STATEMENTS_NEW)
    return lines


def print_events(workloads: IdentityWorkloads, events: Events, out: Report) -> bool:
    """The outbox section; True when every event written reached the stream exactly once."""
    st, expected = events.state, workloads.created + workloads.linked
    # Rows whose event carried personal data (every identity event) are deleted once published
    # (loopkit.pii), so the relay's own count stands for the rows written.
    published = round(events.metrics.get("outbox published", 0))
    ok = st.unpublished == 0 and st.on_stream == expected and published == expected
    prefix = f"{SUBJECT_ROOT}.{DEFINITION.spec.name}."
    subjects = ", ".join(
        f"{s.removeprefix(prefix)} {n}" for s, n in sorted(events.by_subject.items())
    )
    out("Outbox and events (all cells, warm-ups included):")
    out(f"  customers created (answers with created=true)  {workloads.created}")
    out(f"  identities linked (workload c)                  {workloads.linked}")
    out(f"  events expected (created + linked)              {expected}")
    out(
        f"  outbox rows kept / still unpublished            {st.outbox_rows} / {st.unpublished}"
        " (rows with personal data are deleted once published)"
    )
    out(f"  messages on stream {STREAM:<28} {st.on_stream} ({subjects})")
    out(f"  in the database: customers {st.customers}, identities {st.identities}")
    out(
        f"  relay drained {events.drained_s:.2f} s after the last call; the service counted "
        f"{events.metrics.get('outbox published', 0):.0f} published, "
        f"{events.metrics.get('outbox duplicates', 0):.0f} duplicates"
    )
    if workloads.reused_for_attach:
        out(
            f"  note: (c) ran out of customers without a unionid; {workloads.reused_for_attach} "
            "calls gave an existing customer another one"
        )
    out(
        "  => OK: every event written was relayed, none lost or duplicated"
        if ok
        else "  => MISMATCH: expected, published and stream counts differ (see above)"
    )
    calls = sorted((k.split()[1], v) for k, v in events.metrics.items() if k.startswith("Resolve"))
    out(
        "  service-side ResolveCustomer calls by status: "
        + (", ".join(f"{code} {n:.0f}" for code, n in calls) or "(no metrics)")
    )
    return ok


async def run(args: argparse.Namespace, out: Report, cleanup: Cleanup) -> dict[str, Any]:
    stack = await start_stack(cleanup)
    warmup_s = min(0.5, args.duration / 5)
    pg = make_url(database_base_url())
    out(
        f"ResolveCustomer benchmark: {args.duration:g} s per cell (+{warmup_s:g} s warm-up), "
        f"concurrency {','.join(map(str, args.concurrency))}, one HTTP/2 channel per target, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, grpcio {grpc.__version__}"
    )
    out(
        f"PostgreSQL {pg.host}:{pg.port or 5432} database {stack.database}; nats-server "
        f"{stack.natsd.url} (sync_interval: always); setup took {stack.setup_s:.1f} s"
    )
    if stack.inherited:
        out(f"service settings inherited from the environment: {', '.join(stack.inherited)}")
    out()

    nc: Client = await nats.connect(stack.natsd.url)
    js = nc.jetstream()
    engine = create_async_engine(stack.database_url, poolclass=NullPool)
    channels = [
        # The echo servers check no keys (the comparison is of the bare call path).
        grpc.aio.insecure_channel(stack.raw_target),
        grpc.aio.insecure_channel(stack.kit_target),
        keyed(stack.identity_target),
    ]
    raw, kit, identity = channels
    workloads = IdentityWorkloads(
        identity_pb2_grpc.IdentityServiceStub(identity),  # type: ignore[no-untyped-call]
        os.urandom(4).hex(),
    )
    cells = [
        Cell("echo (bare grpc.aio)", "echo", "raw", echo_call(raw), False),
        Cell("echo (kit GrpcServer)", "echo", "kit", echo_call(kit), False),
        Cell("(a) new customer", "identity", "new", workloads.new_customer, True),
        Cell("(b) repeat resolve", "identity", "repeat", workloads.repeat, True),
        Cell("(c) attach 2nd identity", "identity", "attach", workloads.attach, True),
    ]
    try:
        measured = await measure(
            cells, args=args, warmup_s=warmup_s, engine=engine, js=js, stack=stack, out=out
        )
        events = await settle_events(engine, js, stack.http_port)
    finally:
        for channel in channels:
            await channel.close()
        await nc.close()
        await engine.dispose()

    # A graceful stop now, so shutdown problems show up in the log read below.
    identity_exit = await asyncio.to_thread(stack.identity.stop)
    problems = log_problems(stack.identity.log_path)
    stack.echo.stop()

    out()
    print_table(measured, out)
    out()
    print_round_trips(measured, out)
    out()
    events_ok = print_events(workloads, events, out)
    out()
    out(f"Identity service stopped with exit code {identity_exit}; its log warnings/errors:")
    for message, count in problems.most_common(10):
        out(f"  {count} x {message}")
    if not problems:
        out("  none")
    out()
    goal_lines = goals(measured, out)
    scaled: list[ScalingCell] = []
    if args.workers > 1:
        out()
        scaled = await scaling(stack, args.workers, args, out)

    return {
        "config": {
            "duration_s": args.duration,
            "warmup_s": warmup_s,
            "concurrency": args.concurrency,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "grpcio": grpc.__version__,
            "postgres": f"{pg.host}:{pg.port or 5432}",
            "nats_sync_always": True,
            "inherited_settings": stack.inherited,
            "setup_s": round(stack.setup_s, 2),
        },
        "cells": [
            {
                **m.result.as_dict(),
                "label": m.cell.label,
                "vs_echo": None if (x := ratio_to_echo(measured, m)) is None else round(x, 3),
                "outbox_backlog": m.state.unpublished if m.state else None,
                "round_trips_per_call": m.round_trips or None,
                "statements_per_call": m.statements or None,
                "cpu_ms_per_call": None if m.cpu_ms is None else round(m.cpu_ms, 3),
            }
            for m in measured
        ],
        "events": {
            "created": workloads.created,
            "linked": workloads.linked,
            "expected": workloads.created + workloads.linked,
            "outbox_rows": events.state.outbox_rows,
            "unpublished": events.state.unpublished,
            "on_stream": events.state.on_stream,
            "by_subject": events.by_subject,
            "customers": events.state.customers,
            "identities": events.state.identities,
            "drained_s": round(events.drained_s, 3),
            "reused_for_attach": workloads.reused_for_attach,
            "ok": events_ok,
        },
        "goals": goal_lines,
        "workers": [
            {
                "workers": c.workers,
                "workload": c.workload,
                "rps": round(c.result.rps, 1),
                "p99_ms": c.result.p99_ms,
                "errors": c.result.errors,
                "cpu_share": {
                    "client": round(c.client_share, 3),
                    "service": round(c.service_share, 3),
                    "postgres": round(c.postgres_share, 3),
                    "machine": round(c.machine_share, 3),
                },
                "machine_by_process": {k: round(v, 3) for k, v in c.where},
                "connections_opened": c.connections_opened,
                "per_worker": [
                    {"client_connections": n, "cpu_of_one_cpu": round(cpu, 3)}
                    for n, cpu in c.per_worker
                ],
            }
            for c in scaled
        ],
        "service": {
            "exit_code": identity_exit,
            "metrics": events.metrics,
            "log_problems": dict(problems),
        },
    }


# --- scaling over worker processes (--workers N) ----------------------------------------------

GOAL_WORKERS_RATIO = 1.4
SCALING_CONCURRENCY = 64
# Connections the callers spread over, as several calling processes would: with SO_REUSEPORT the
# kernel gives each connection to one worker, so one connection would reach one worker only. Each
# channel needs its own (`own_connection`): gRPC shares one connection between a process's
# channels to one target otherwise, and the 8 channels of stop 23 were one connection, one worker.
# The kernel hashes each connection to a worker, so the split varies run to run: each cell prints
# it.
SCALING_CHANNELS = 16


class RoundRobinStub:
    """ResolveCustomer over several channels in turn (duck-types IdentityServiceStub)."""

    def __init__(self, channels: list[grpc.aio.Channel]) -> None:
        stubs = [identity_pb2_grpc.IdentityServiceStub(ch) for ch in channels]  # type: ignore[no-untyped-call]
        self._next = itertools.cycle(stubs)

    def ResolveCustomer(self, request: Any, **kwargs: Any) -> Any:  # gRPC's method name
        return next(self._next).ResolveCustomer(request, **kwargs)


def _machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine spent (everything but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def _process_tree(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(int(c) for c in children)]


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


async def _sessions_opened(engine: AsyncEngine, database: str) -> int | None:
    """Connections opened to `database` since statistics began (PostgreSQL 14+)."""
    async with engine.connect() as conn:
        try:
            found = await conn.scalar(
                text("SELECT sessions FROM pg_stat_database WHERE datname = :db"), {"db": database}
            )
        except SQLAlchemyError:
            return None
        return None if found is None else int(found)


async def _backends(engine: AsyncEngine, database: str) -> list[int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = :db"), {"db": database}
        )
        return [int(r[0]) for r in rows]


@dataclass(frozen=True)
class Proc:
    """A process in an `_all_processes` snapshot."""

    name: str
    ppid: int
    seconds: float  # its own user + system CPU
    reaped: float  # user + system CPU of its children that exited and it waited for


def _all_processes() -> dict[tuple[int, str], Proc]:
    """Every process of the machine now, by (pid, start time). Python processes are named by
    their script or `-m` module (other engineers' tests and benches show up as what they run),
    kernel workers together as `kworker` (their command name changes with the work they do), the
    others by their command name."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
            argv = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        found[(int(entry.name), fields[19])] = Proc(
            _process_name(name, [a.decode(errors="replace") for a in argv if a]),
            int(fields[1]),
            (int(fields[11]) + int(fields[12])) / tick,
            (int(fields[13]) + int(fields[14])) / tick,
        )
    return found


def _process_name(comm: str, argv: list[str]) -> str:
    if comm.startswith("kworker/"):
        return "kworker"
    if not comm.startswith("python") or len(argv) < 2:
        return comm
    args = argv[1:]
    if args[0] == "-c":
        return "python -c"
    if "-m" in args[:-1]:
        return f"python -m {args[args.index('-m') + 1]}"
    script = next((a for a in args if not a.startswith("-")), "")
    return f"python {Path(script).name}" if script else comm


def _kernel_seconds() -> dict[str, float]:
    """Machine CPU seconds outside processes' own accounting: interrupts and steal."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    return {"irq": (values[5] + values[6]) / tick, "steal": values[7] / tick}


def machine_shares(
    before: dict[tuple[int, str], Proc],
    after: dict[tuple[int, str], Proc],
    ours: dict[str, set[int]],
    wall_cpu_s: float,
) -> list[tuple[str, float]]:
    """Where the whole machine's CPU went between two `_all_processes` snapshots: the bench's
    own processes by role (`ours`: role -> pids), everything else by name, largest first.

    A process that exited during the cell is gone from the second snapshot, but its CPU is not
    lost: once its parent waited for it, the kernel adds it to the parent's children's time
    (`cutime` + `cstime`). So each parent's growth there is counted as "exited children of" the
    parent, less what its children gone since the first snapshot had spent before it (a
    PostgreSQL backend of a closed connection lands under its postmaster this way)."""
    role_of = {pid: role for role, pids in ours.items() for pid in pids}

    def role(pid: int, name: str) -> str:
        return role_of.get(pid, f"other: {name}")

    spent: dict[str, float] = {}

    def add(what: str, seconds: float) -> None:
        spent[what] = spent.get(what, 0.0) + max(0.0, seconds)

    # Live pid -> the earlier CPU of its descendants now gone, each charged to its nearest
    # ancestor still alive (a subshell that exited hands its children's time on to its parent).
    alive = {pid for pid, _ in after}
    parent_of = {pid: proc.ppid for (pid, _), proc in before.items()}
    gone_before: dict[int, float] = {}
    for key, proc in before.items():
        if key not in after:
            ancestor, hops = proc.ppid, 0
            while ancestor not in alive and ancestor in parent_of and hops < 64:
                ancestor, hops = parent_of[ancestor], hops + 1
            gone_before[ancestor] = gone_before.get(ancestor, 0.0) + proc.seconds + proc.reaped
    for key, proc in after.items():
        earlier = before.get(key)  # None: started during the cell
        add(role(key[0], proc.name), proc.seconds - (earlier.seconds if earlier else 0.0))
        reaped = proc.reaped - (earlier.reaped if earlier else 0.0) - gone_before.get(key[0], 0.0)
        if reaped > 0.0005:
            add(f"exited children of {role(key[0], proc.name).removeprefix('other: ')}", reaped)
    return sorted(((k, v / wall_cpu_s) for k, v in spent.items()), key=lambda kv: -kv[1])


@dataclass
class ScalingCell:
    workers: int
    workload: str
    result: CellResult
    client_share: float
    service_share: float
    postgres_share: float
    machine_share: float
    where: list[tuple[str, float]] = field(default_factory=list)
    connections_opened: int | None = None
    # Per worker process: the client connections it holds, and its CPU share of one CPU.
    per_worker: list[tuple[int, float]] = field(default_factory=list)


def print_scaling_cell(cell: ScalingCell, cpus: int, out: Report) -> None:
    result = cell.result
    out(
        f"  {cell.workers} worker(s) {cell.workload:<7} c={SCALING_CONCURRENCY} "
        f"{result.rps:8.1f} req/s  p99 {_ms(result.p99_ms)} ms  errors {result.errors}  CPU share"
        f" of {cpus} CPUs: client {cell.client_share:.0%}, service {cell.service_share:.0%}, "
        f"PostgreSQL {cell.postgres_share:.0%}, whole machine {cell.machine_share:.0%}"
    )
    shown = [f"{k} {v:.0%}" for k, v in cell.where if v >= 0.01]
    out(f"    whole machine by process: {', '.join(shown)}")
    if cell.per_worker:
        out(
            "    per worker: client connections "
            + " / ".join(str(n) for n, _ in cell.per_worker)
            + ", CPU "
            + " / ".join(f"{cpu:.0%}" for _, cpu in cell.per_worker)
            + " of one CPU"
        )
    if cell.connections_opened is not None:
        # Statistics reach pg_stat_database within a second or so: roughly, and with the
        # bench's own two connections around the cell.
        out(
            "    connections opened to the bench database during the cell: "
            f"~{cell.connections_opened}"
        )


async def start_workers(stack: Stack, workers: int) -> tuple[ChildProcess, str]:
    """The identity service with `workers` worker processes, listening; and its gRPC target."""
    name = f"identity service ({workers} workers)"

    def start(ports: list[int]) -> ChildProcess:
        env = child_env(stack.natsd.url, stack.database_url, ports[0], ports[1], stack.workdir)
        env["CLOSEDLOOP_WORKERS"] = str(workers)
        return ChildProcess(
            name,
            [sys.executable, "-m", DEFINITION.spec.module],
            log_path=stack.workdir / f"identity-workers-{workers}.log",
            env=env,
            cwd=REPO,
        )

    service, (grpc_port, _) = await start_on_free_ports(name, 2, start)
    return service, f"127.0.0.1:{grpc_port}"


async def _every_worker_listening(target: str, workers: int, out: Report) -> None:
    """Serving is one worker listening; the channels connect at their first call, which must
    find every worker's socket, or the kernel gives all of them to the first."""
    listening = await wait_listeners(int(target.rsplit(":", 1)[1]), workers)
    if listening < workers:
        out(f"  warning: {listening} of {workers} workers listening after 60 s")


async def scaling_cell(
    stack: Stack, engine: AsyncEngine, workers: int, args: argparse.Namespace, out: Report
) -> list[ScalingCell]:
    """The identity service with `workers` worker processes, new and repeat at c=64."""
    service, target = await start_workers(stack, workers)
    channels = [keyed(target, own_connection=True) for _ in range(SCALING_CHANNELS)]
    cells: list[ScalingCell] = []
    try:
        await wait_serving(target, service, 60.0)
        await _every_worker_listening(target, workers, out)
        workloads = IdentityWorkloads(
            RoundRobinStub(channels),  # type: ignore[arg-type]
            os.urandom(4).hex(),
        )
        cpus = os.cpu_count() or 1
        for name, call in (("new", workloads.new_customer), ("repeat", workloads.repeat)):
            load = {"concurrency": SCALING_CONCURRENCY, "target": target, "workload": name}
            await closed_loop(call, duration_s=min(0.5, args.duration / 5), **load)  # type: ignore[arg-type]
            pg_pids = await _backends(engine, stack.database)
            postmaster = _parent(pg_pids[0]) if pg_pids else None
            service_pids = _process_tree(service.proc.pid)
            sessions0 = await _sessions_opened(engine, stack.database)
            everyone0, kernel0 = _all_processes(), _kernel_seconds()
            client0, busy0 = time.process_time(), _machine_busy_seconds()
            service0, pg0 = cpu_seconds(service_pids), cpu_seconds(pg_pids)
            started = time.perf_counter()
            result = await closed_loop(call, duration_s=args.duration, **load)  # type: ignore[arg-type]
            wall = (time.perf_counter() - started) * cpus
            client = (time.process_time() - client0) / wall
            service_pids = _process_tree(service.proc.pid)  # workers restarted meanwhile too
            service1 = cpu_seconds(service_pids)
            served = cpu_spent(service0, service1) / wall
            # The workers (the supervisor, when there is one, serves no calls).
            serving = [p for p in service_pids if workers == 1 or p != service.proc.pid]
            port = int(target.rsplit(":", 1)[1])
            held = accepted_connections(serving, port)
            per_worker = [
                (held[p], (service1.get(p, 0.0) - service0.get(p, 0.0)) * cpus / wall)
                for p in serving
            ]
            pg_pids = await _backends(engine, stack.database)  # and those opened meanwhile
            pg = cpu_spent(pg0, cpu_seconds(pg_pids)) / wall
            busy = (_machine_busy_seconds() - busy0) / wall
            everyone, kernel = _all_processes(), _kernel_seconds()
            sessions1 = await _sessions_opened(engine, stack.database)
            opened = sessions1 - sessions0 if sessions0 is not None and sessions1 else None
            ours = {
                "PostgreSQL postmaster (bench)": {postmaster} if postmaster else set(),
                "bench client": {os.getpid()},
                "service": set(service_pids),
                "PostgreSQL, bench database": set(pg_pids),
                "nats-server (bench)": {stack.natsd.process.pid} if stack.natsd.process else set(),
            }
            where = machine_shares(everyone0, everyone, ours, wall)
            where += [(f"kernel: {k}", (kernel[k] - kernel0[k]) / wall) for k in ("irq", "steal")]
            # The postmaster forks a backend per connection and reaps it: both are PostgreSQL's.
            pg += sum(v for k, v in where if k.endswith("PostgreSQL postmaster (bench)"))
            accounted = sum(v for _, v in where)
            where.append(("exited during the cell, or not accounted", max(0.0, busy - accounted)))
            cell = ScalingCell(
                workers, name, result, client, served, pg, busy, where, opened, per_worker
            )
            cells.append(cell)
            print_scaling_cell(cell, cpus, out)
    finally:
        for channel in channels:
            await channel.close()
        await asyncio.to_thread(service.stop)
        # Workers the supervisor left behind if it had to be killed (they share its group).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.proc.pid, signal.SIGKILL)
    return cells


async def scaling(
    stack: Stack, workers: int, args: argparse.Namespace, out: Report
) -> list[ScalingCell]:
    """1 worker, then `workers`, on the same database and nats-server; one ratio line."""
    out(
        f"Worker processes (CLOSEDLOOP_WORKERS), {SCALING_CHANNELS} client connections, "
        f"{args.duration:g} s per cell; the client, PostgreSQL and the service share the CPUs "
        "(PostgreSQL: the backends of the bench database alive at the cell's end, plus its "
        "postmaster and the backends that exited meanwhile; whole machine: every process, other "
        "users' included):"
    )
    engine = create_async_engine(stack.database_url, poolclass=NullPool)
    try:
        cells = await scaling_cell(stack, engine, 1, args, out)
        cells += await scaling_cell(stack, engine, workers, args, out)
    finally:
        await engine.dispose()
    rps = {(c.workers, c.workload): c.result.rps for c in cells}
    for workload in ("new", "repeat"):
        base = rps[(1, workload)]
        out(
            f"  {workload}: {workers} workers / 1 = "
            f"{rps[(workers, workload)] / base if base else float('nan'):.2f}"
        )
    base = rps[(1, "new")]
    value = rps[(workers, "new")] / base if base else 0.0
    out(f"ratio workers_{workers}_vs_1 {value:.3f} goal {GOAL_WORKERS_RATIO:g}")
    return cells


def concurrency_list(value: str) -> list[int]:
    try:
        levels = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of numbers: {value}"
        ) from None
    if not levels or any(n < 1 for n in levels):
        raise argparse.ArgumentTypeError("concurrency levels must be positive")
    return levels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration", type=float, default=5.0, help="seconds of load per cell (default 5)"
    )
    parser.add_argument(
        "--concurrency",
        type=concurrency_list,
        default=[1, 8, 64],
        help="comma-separated concurrent callers per cell (default 1,8,64)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 s per cell at concurrency 8 and 64 (the goals' levels), for routine runs",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="0.5 s per cell at concurrency 8 (every ratio line but the c=64 ones): does it run",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="also run the identity service with 1 and then N worker processes "
        "(CLOSEDLOOP_WORKERS) and print ratio workers_N_vs_1",
    )
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="PATH",
        help="also write the results as JSON: to PATH, or to stdout (the table then goes to "
        "stderr) when no PATH is given",
    )
    args = parser.parse_args()
    if args.quick:
        args.duration, args.concurrency = 2.0, [8, 64]
    if args.smoke:
        args.duration, args.concurrency = 0.5, [8]
    if args.duration <= 0:
        parser.error("--duration must be positive")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    out = Report(sys.stderr if args.json == "-" else sys.stdout)

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    cleanup = Cleanup()
    try:
        document = asyncio.run(run(args, out, cleanup))
    except KeyboardInterrupt:
        out("interrupted: cleaning up")
        return 130
    finally:
        cleanup.run()
    if args.json == "-":
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.json:
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
        out(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
