"""Lead assignment throughput: leads assigned per second from a backlog of `lead.captured` events,
next to the raw JetStream consume+ack rate of the same events, measured in the same run.

    .venv/bin/python bench/assignment.py [--leads 50000] [--reps 20] [--quick]
        [--database postgres|sqlite]

It starts its own nats-server, creates a throwaway PostgreSQL database
(CLOSEDLOOP_BENCH_DATABASE_URL or CLOSEDLOOP_TEST_DATABASE_URL, default postgres@127.0.0.1) or a
SQLite file, publishes the backlog to the ACQUISITION stream, then:

1. raw: a durable pull consumer fetches and acks every event (the ceiling: no database at all),
   once with nats-py's fetch and acks, once with the kit's lean fetch and one-write acks (the
   ratio's ceiling, since the service's consumers take that path);
2. service: the conversion service (in this process, its real consumer) starts against the
   backlog and assigns every lead by round-robin among the reps, writing lead, assignment history
   and the `lead.assigned` outbox row per lead; timed until its consumer has nothing pending and
   the database holds every lead as assigned.

Prints one table with both rates and their ratio, the SQL statements and transactions per event
the service made while it worked (SQLAlchemy event hooks, split into the consumer's side and the
outbox relay's, see _statements.py), and removes the database and the server. `--quick` takes
3,000 leads: a few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import nats
from _common import backend_pids, cpu_seconds, cpu_spent, keys_env, start_nats
from _statements import SIDES, install, round_trips
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop_conversion.main import DEFINITION
from closedloop_conversion.models import LeadRow
from closedloop_conversion.sales.inputs import RepInput
from closedloop_conversion.sales.service import SalesService
from closedloop_conversion.transport.events import LEADS_BATCH
from loopkit import jetstream, natsio
from loopkit.db import transact
from loopkit.events import new_envelope, subject_for

TENANT = "bench"
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/"


async def _admin(base: str, sql: str) -> None:
    engine = create_async_engine(
        make_url(base).set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def publish_backlog(nc: Client, leads: int) -> float:
    js = nc.jetstream()
    started = time.perf_counter()
    pending = []
    for i in range(leads):
        env = new_envelope(
            producer="acquisition",
            event_type="lead.captured",
            tenant_id=TENANT,
            customer_id=f"cust-{i}",
            payload=acq.LeadCaptured(lead_id=f"lead-{uuid.uuid4().hex}", campaign_id="bench"),
        )
        pending.append(
            js.publish(
                subject_for("acquisition", "lead.captured"),
                env.SerializeToString(),
                headers={"Nats-Msg-Id": env.id},
            )
        )
        if len(pending) >= 500:
            await asyncio.gather(*pending)
            pending = []
    await asyncio.gather(*pending)
    return time.perf_counter() - started


@dataclass
class Timed:
    """Wall seconds of a phase and this process's CPU seconds in it (every thread)."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    # The bench database's PostgreSQL backends (None: not measured, or not on this machine).
    pg_cpu_s: float | None = None


async def raw_consume(nc: Client, leads: int, batch: int, timed: Timed, *, lean: bool) -> None:
    js = nc.jetstream()
    durable = "bench-raw-lean" if lean else "bench-raw"
    await js.add_consumer(
        "ACQUISITION",
        ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=subject_for("acquisition", "lead.captured"),
            max_ack_pending=10_000,
        ),
    )
    sub = await js.pull_subscribe_bind(durable=durable, stream="ACQUISITION")
    taken = 0
    started, cpu = time.perf_counter(), time.process_time()
    # lean: the kit's own fetch and one-write acks, as the service's consumers take them (the
    # ceiling the ratio uses: it must not pay nats-py overhead the service no longer pays);
    # else nats-py's fetch and one ack per message (the ceiling before assign5).
    while taken < leads:
        if lean:
            msgs = await jetstream.fetch(sub, batch, 5)
            await jetstream.ack_all(nc, msgs)
        else:
            msgs = await sub.fetch(batch, timeout=5)
            for msg in msgs:
                await msg.ack()
        taken += len(msgs)
    timed.wall_s, timed.cpu_s = time.perf_counter() - started, time.process_time() - cpu
    await sub.unsubscribe()


async def service_consume(
    settings_kw: dict[str, object],
    js: JetStreamContext,
    leads: int,
    reps: int,
    counts: Counter[str],
    *,
    timed: Timed,
    profile: str | None = None,
) -> None:
    # Services refuse to start without callers' keys; this one takes no calls, but starts as in
    # production.
    keys = Path(keys_env()["CLOSEDLOOP_API_KEYS_FILE"])
    settings = DEFINITION.settings_cls(
        service="conversion",
        api_keys_file=keys,
        **settings_kw,  # type: ignore[arg-type]
    )
    runtime = DEFINITION.runtime(settings)
    await runtime.migrate()
    # The reps exist before the clock starts (written through the domain, not timed).
    sales = SalesService(runtime.outbox)
    for i in range(reps):
        rep = RepInput(wecom_user_id=f"rep-{i}", name=f"rep {i}", team="", capacity=leads)

        async def create(session: AsyncSession, rep: RepInput = rep) -> None:
            await sales.create_rep(session, TENANT, rep)

        await transact(runtime.sessions, create)
    counts.clear()  # only what the consumer and the relay do from here on
    url = settings.resolved_database_url()
    postgres = url.startswith("postgresql")
    pg_before = cpu_seconds(await backend_pids(url)) if postgres else {}
    spy = _start_profile(profile)
    started, cpu = time.perf_counter(), time.process_time()
    await runtime.start()
    try:
        while True:
            info = await js.consumer_info("ACQUISITION", "conversion-leads")
            if info.num_pending == 0 and info.num_ack_pending == 0:
                async with runtime.sessions() as session:
                    assigned = await session.scalar(
                        select(func.count()).where(LeadRow.status == "assigned")
                    )
                if assigned == leads:
                    break
            await asyncio.sleep(0.05)
        timed.wall_s, timed.cpu_s = time.perf_counter() - started, time.process_time() - cpu
        if postgres:  # the service's pooled connections are still open here
            readable = cpu_seconds(await backend_pids(url))
            if readable:
                timed.pg_cpu_s = cpu_spent(pg_before, readable)
        frozen = Counter(counts)  # the bench's own polling above is a few statements, not more
    finally:
        _stop_profile(spy)
        await runtime.stop()
    counts.clear()
    counts.update(frozen)


def _start_profile(path: str | None) -> subprocess.Popen[bytes] | None:
    """py-spy (not a project dependency) on this process for the service's phase only: raw
    collapsed stacks at 250 Hz into `path`, idle threads left out."""
    if not path:
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    cmd = [spy, "record", "-r", "250", "-f", "raw", "-o", path, "--pid", str(os.getpid())]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached before the clock starts
    return proc


def _stop_profile(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None:
        proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        proc.wait(timeout=60)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=50_000)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        help="every consumer's fetch batch (default: the service's own, LEADS_BATCH for leads)",
    )
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--quick", action="store_true", help="3,000 leads: a few seconds")
    parser.add_argument("--smoke", action="store_true", help="300 leads, 5 reps: does it run")
    parser.add_argument(
        "--profile", metavar="FILE", help="py-spy this process's service phase into FILE (raw)"
    )
    args = parser.parse_args()
    if args.quick:
        args.leads = 3_000
    if args.smoke:
        args.leads, args.reps = 300, 5
    return args


async def main() -> int:
    args = parse_args()
    counts: Counter[str] = Counter()
    install(counts)
    raw, raw_natspy, service = Timed(), Timed(), Timed()
    batch = LEADS_BATCH if args.batch is None else args.batch

    workdir = Path(tempfile.mkdtemp(prefix="bench-assignment-"))
    server = await start_nats(workdir / "nats", sync_always=False)
    base = (
        os.environ.get("CLOSEDLOOP_BENCH_DATABASE_URL")
        or os.environ.get("CLOSEDLOOP_TEST_DATABASE_URL")
        or DEFAULT_PG
    )
    db_name = f"bench_assignment_{uuid.uuid4().hex[:8]}"
    if args.database == "postgres":
        await _admin(base, f'CREATE DATABASE "{db_name}"')
        url = make_url(base).set(database=db_name).render_as_string(hide_password=False)
    else:
        url = f"sqlite+aiosqlite:///{workdir}/conversion.db"
    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream()
        await natsio.ensure_service_streams(js, "acquisition", replicas=1)
        publish_s = await publish_backlog(nc, args.leads)
        # The raw consumer fetches batches of the size the leads consumer fetches.
        await raw_consume(nc, args.leads, batch, raw_natspy, lean=False)
        await raw_consume(nc, args.leads, batch, raw, lean=True)
        await service_consume(
            {
                "database_url": url,
                "nats_url": server.url,
                "state_dir": workdir,
                "grpc_port": 0,
                "http_port": 0,
                "log_level": "WARNING",
                # Set only when asked: it then overrides the service's own sizes.
                **({} if args.batch is None else {"consumer_batch_size": args.batch}),
            },
            js,
            args.leads,
            args.reps,
            counts,
            timed=service,
            profile=args.profile,
        )
    finally:
        await nc.close()
        server.stop()
        if args.database == "postgres":
            await _admin(base, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)
    raw_rate = args.leads / raw.wall_s
    service_rate = args.leads / service.wall_s
    print(
        f"backlog: {args.leads} lead.captured events ({args.database}, {args.reps} reps,"
        f" batch {batch})"
    )
    print(f"  published in {publish_s:.1f} s; load average {os.getloadavg()[0]:.1f}")
    print(f"{'':28}{'seconds':>10}{'events/s':>12}{'CPU ms/event':>14}{'PG CPU ms/event':>17}")
    for label, timed in (
        ("raw, nats-py fetch + acks", raw_natspy),
        ("raw JetStream consume+ack", raw),
        ("conversion assignment", service),
    ):
        pg = "" if timed.pg_cpu_s is None else f"{1000 * timed.pg_cpu_s / args.leads:.3f}"
        print(
            f"{label:28}{timed.wall_s:>10.2f}{args.leads / timed.wall_s:>12.0f}"
            f"{1000 * timed.cpu_s / args.leads:>14.3f}{pg:>17}"
        )
    print("per event (SQL statements / transactions / round trips incl. BEGIN and COMMIT):")
    for side in SIDES:
        label = "consumer" if side == "request" else "outbox relay"
        print(
            f"  {label:14}{counts[f'{side} statements'] / args.leads:8.2f}"
            f"{counts[f'{side} transactions'] / args.leads:8.3f}"
            f"{round_trips(counts, side) / args.leads:8.2f}"
        )
    total = sum(round_trips(counts, side) for side in SIDES) / args.leads
    print(f"  {'total':14}{'':16}{total:8.2f}")
    # Against nats-py's consume+ack (the ceiling before the service took the kit's lean fetch),
    # for comparison with earlier runs; the goal's line is against the lean one.
    print(f"  vs nats-py fetch + acks: {service_rate * raw_natspy.wall_s / args.leads:.3f}")
    print(f"ratio assignment_vs_raw {service_rate / raw_rate:.3f} goal 0.25")
    return 0


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the cleanup in main()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(asyncio.run(main()))
