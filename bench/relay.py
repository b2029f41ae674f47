"""Outbox relay throughput: events/s the kit's relay moves from a PostgreSQL outbox to JetStream,
next to a raw pipelined publish of the same number of messages, measured in the same run.

    .venv/bin/python bench/relay.py [--rows 50000] [--batch 200] [--no-seal] [--quick | --smoke]

It creates a throwaway PostgreSQL database (CLOSEDLOOP_BENCH_DATABASE_URL or
CLOSEDLOOP_TEST_DATABASE_URL, default postgres@127.0.0.1) migrated with identity's schema, starts
its own nats-server (`sync_interval: always`, as deployed) with identity's streams, and builds
`customer.created` events as identity's resolve writes them (an openid and a unionid each, a
traceparent header), then:

1. raw: nats-py publishes `--rows` of those messages (each with its `Nats-Msg-Id`) with
   `publish_async`, every one in flight at once up to nats-py's window of 4,000, and waits for
   every ack: the ceiling, no database at all;
2. relay: `--rows` other such events are written to the outbox as pending rows (not timed), then
   the kit's `OutboxRelay` drains them (claim, read, seal the personal values under the customers'
   data keys as identity's relay does with its key cache, publish pipelined, mark) until the
   outbox is empty. `--no-seal` leaves the sealer out (a relay of events about nobody).

Prints both rates, the SQL statements and round trips per event the relay made (SQLAlchemy event
hooks, `_statements.py`), checks that the stream holds every message once and the outbox nothing
unsent, ends with `ratio relay_vs_raw_publish <v> goal 0.7`, and removes the database and the
server. `--quick` takes 5,000 rows in 5 rounds, `--smoke` 1,000 in one round (the smoke test's
size).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    Cleanup,
    cpu_seconds,
    create_database,
    database_base_url,
    drop_database,
    new_database_name,
    start_nats,
)
from _statements import install, round_trips
from nats.js import JetStreamContext
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from closedloop.events.v1 import identity_events_pb2 as ev
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop_identity.customers.contracts import identity_to_pb
from closedloop_identity.customers.identities import IdentityKey, Kind
from closedloop_identity.main import DEFINITION
from closedloop_identity.models import kit
from loopkit import db, migrations, natsio
from loopkit.events import Outbox, stream_for
from loopkit.outbox import OutboxRelay
from loopkit.pii import CachedKeys, Sealer, new_key
from loopkit_dev.natsserver import NatsServer

TENANT = "bench"
PRODUCER = "identity"
APP = "wx-bench-app"
# A W3C traceparent as a traced ResolveCustomer call puts on its events.
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@dataclass
class Message:
    subject: str
    data: bytes
    headers: dict[str, str]


class MemoryKeys:
    """The customers' data keys, as identity's relay finds them in its process cache right after
    the resolves that created the customers (`CachedKeys.remember`): sealing reads no database."""

    def __init__(self, customer_ids: Sequence[str]) -> None:
        self.by_customer = {cid: new_key() for cid in customer_ids}

    async def keys(self, tenant_id: str, customer_ids: Sequence[str]) -> dict[str, bytes | None]:
        return {cid: self.by_customer.get(cid) for cid in customer_ids}


def build_rows(outbox: Outbox, n: int, tag: str) -> list[dict[str, Any]]:
    """`n` outbox rows of `customer.created`, as identity's resolve writes them."""
    rows = []
    for i in range(n):
        customer_id = f"cust-{tag}-{i:07d}"
        env = outbox.envelope(
            "customer.created",
            tenant_id=TENANT,
            customer_id=customer_id,
            payload=ev.CustomerCreated(
                customer_id=customer_id,
                identities=[
                    identity_to_pb(IdentityKey(Kind.WECHAT_OPENID, APP, f"o{tag}{i:027d}")),
                    identity_to_pb(IdentityKey(Kind.WECHAT_UNIONID, "", f"u{tag}{i:027d}")),
                ],
            ),
        )
        env.traceparent = TRACEPARENT
        rows.append(outbox.row(env))
    return rows


async def raw_publish(js: JetStreamContext, messages: list[Message]) -> float:
    """Every message in flight at once (nats-py keeps at most 4,000 unacknowledged), then every
    ack awaited: pipelined, as fast as this client and the server take them."""
    started = time.perf_counter()
    futures = [await js.publish_async(m.subject, m.data, headers=dict(m.headers)) for m in messages]
    acks = await asyncio.gather(*futures)
    elapsed = time.perf_counter() - started
    duplicates = sum(1 for a in acks if a.duplicate)
    if duplicates:
        raise RuntimeError(f"raw publish: {duplicates} acks were duplicates")
    return elapsed


async def fill_outbox(engine: Any, rows: list[dict[str, Any]]) -> None:
    async with engine.begin() as conn:
        for start in range(0, len(rows), 5_000):
            await conn.execute(insert(kit.outbox), rows[start : start + 5_000])
    # What autovacuum would have done after so many inserts: the claim's plan sees the rows.
    async with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        await conn.exec_driver_sql("ANALYZE outbox")


def customers(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for row in rows:
        env = Envelope()
        env.ParseFromString(row["data"])
        out.append(env.customer_id)
    return out


async def drain(relay: OutboxRelay) -> tuple[float, int]:
    started = time.perf_counter()
    published = 0
    # What the relay's loop runs when woken: batches until the outbox is empty.
    while n := await relay.publish_pending():
        published += n
    return time.perf_counter() - started, published


@dataclass
class Results:
    raw_s: list[float] = field(default_factory=list)
    relay_s: list[float] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=lambda: {"raw": 0.0, "relay": 0.0})
    statements: Counter[str] = field(default_factory=Counter)  # the relay's only
    published: int = 0
    stream_messages: int = 0
    unsent: int = 0
    event_bytes: float = 0.0


async def start(cleanup: Cleanup) -> tuple[str, NatsServer]:
    """A fresh database migrated with identity's schema, and a nats-server; both removed by
    `cleanup`."""
    base = database_base_url()
    workdir = Path(tempfile.mkdtemp(prefix="bench-relay-"))
    cleanup.push("remove work dir", lambda: shutil.rmtree(workdir, ignore_errors=True))
    name = new_database_name("bench_relay")
    created = False

    def drop() -> None:
        if created:
            asyncio.run(drop_database(base, name))

    cleanup.push(f"drop database {name}", drop)
    try:
        url = await create_database(base, name)
        created = True
    except (OSError, SQLAlchemyError) as exc:
        shown = make_url(base).render_as_string(hide_password=True)
        raise SystemExit(f"PostgreSQL unavailable at {shown}: {exc}") from None
    await asyncio.to_thread(migrations.upgrade, DEFINITION.migrations_dir, url, service=PRODUCER)
    server = await start_nats(workdir / "nats")  # sync_interval: always
    cleanup.push("stop nats-server", server.stop)
    return url, server


async def measure(
    args: argparse.Namespace, url: str, server: NatsServer, counts: Counter[str]
) -> Results:
    """`args.rounds` rounds, each a raw publish and a relay drain of `args.rows` events."""
    out = Results()
    pids = [os.getpid(), server.process.pid if server.process else 0]
    nc = await natsio.connect(server.url, name="bench-relay")
    engine = db.create_engine(url)
    outbox = Outbox(kit, PRODUCER)
    try:
        js = nc.jetstream()
        await natsio.ensure_service_streams(js, PRODUCER, replicas=1)
        source = MemoryKeys([])
        cache = CachedKeys(source, ttl_s=3600.0, max_entries=2 * args.rows)
        relay = OutboxRelay(
            db.session_factory(engine),
            kit,
            js,
            batch_size=args.batch,
            sealer=None if args.no_seal else Sealer(cache),
        )
        for round_no in range(args.rounds):
            raw_rows = build_rows(outbox, args.rows, f"r{round_no}")
            relay_rows = build_rows(outbox, args.rows, f"o{round_no}")
            out.event_bytes = sum(len(r["data"]) for r in relay_rows) / len(relay_rows)
            messages = [Message(r["subject"], r["data"], r["headers"]) for r in raw_rows]
            await fill_outbox(engine, relay_rows)  # not timed
            # identity's relay finds a new customer's key in its process cache
            source.by_customer = {cid: new_key() for cid in customers(relay_rows)}
            cache.remember(TENANT, source.by_customer)

            async def raw_side(messages: list[Message] = messages) -> None:
                out.raw_s.append(await raw_publish(js, messages))

            async def relay_side() -> None:
                seconds, n = await drain(relay)
                out.relay_s.append(seconds)
                out.published += n

            # Alternate which side goes first, so a drift of the machine's load over the run
            # (or the stream's growing files) weighs on both alike.
            sides = [("raw", raw_side), ("relay", relay_side)]
            for side, run_side in sides if round_no % 2 == 0 else sides[::-1]:
                cpu_before, statements_before = cpu_seconds(pids), Counter(counts)
                await run_side()
                cpu_after = cpu_seconds(pids)
                out.cpu_s[side] += sum(cpu_after.get(p, 0.0) - t for p, t in cpu_before.items())
                if side == "relay":  # the relay's statements only, not the filling
                    out.statements.update(counts - statements_before)
        out.stream_messages = (await js.stream_info(stream_for(PRODUCER))).state.messages
        async with engine.connect() as conn:
            unsent = select(func.count()).where(kit.outbox.c.published_at.is_(None))
            out.unsent = int(await conn.scalar(unsent) or 0)
    finally:
        await engine.dispose()
        await nc.close()
    return out


def report(args: argparse.Namespace, r: Results) -> bool:
    base = make_url(database_base_url())
    events = args.rows * args.rounds
    print(
        f"{args.rows} customer.created events per side and round, {args.rounds} rounds"
        f" ({r.event_bytes:.0f} bytes each, 2 identities), relay batch {args.batch},"
        f" {'not sealed' if args.no_seal else 'sealed'}; nats-server sync_interval: always;"
        f" PostgreSQL {base.host}:{base.port}"
    )
    print(f"{'events/s':34}{'each round':>34}{'median':>10}{'CPU ms/event':>14}")
    for label, side, times in (
        ("raw publish_async (no database)", "raw", r.raw_s),
        ("kit OutboxRelay (PostgreSQL)", "relay", r.relay_s),
    ):
        rates = " ".join(f"{args.rows / s:>6.0f}" for s in times)
        median = statistics.median(args.rows / s for s in times)
        print(f"{label:34}{rates:>34}{median:>10.0f}{1000 * r.cpu_s[side] / events:>14.3f}")
    # Each round's ratio compares two measurements a few seconds apart; the median of the rounds
    # keeps one round's disk stall (every message is fsynced) from deciding the result.
    ratios = [raw / relay for raw, relay in zip(r.raw_s, r.relay_s, strict=True)]
    print(f"{'relay / raw':34}{' '.join(f'{x:>6.3f}' for x in ratios):>34}")
    print("(CPU: this process, the client or the relay, plus nats-server; not PostgreSQL's)")
    statements = sum(v for k, v in r.statements.items() if k.endswith("statements"))
    transactions = sum(v for k, v in r.statements.items() if k.endswith("transactions"))
    trips = round_trips(r.statements, "relay") + round_trips(r.statements, "request")
    print(
        f"relay per event: {statements / events:.3f} SQL statements,"
        f" {transactions / events:.3f} transactions, {trips / events:.3f} round trips"
        f" ({statements} statements for {events} events)"
    )
    expected = 2 * events
    ok = r.published == events and r.stream_messages == expected and r.unsent == 0
    print(
        f"check: relay published {r.published}, stream holds {r.stream_messages}"
        f" (expected {expected}), outbox unsent {r.unsent}: {'OK' if ok else 'MISMATCH'}"
    )
    print(f"ratio relay_vs_raw_publish {statistics.median(ratios):.3f} goal 0.7")
    return ok


async def run(args: argparse.Namespace, cleanup: Cleanup, counts: Counter[str]) -> int:
    url, server = await start(cleanup)
    return 0 if report(args, await measure(args, url, server, counts)) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000, help="events per side")
    parser.add_argument("--batch", type=int, default=200, help="the relay's batch size")
    parser.add_argument(
        "--rounds", type=int, default=3, help="raw and relay measured in turn, this many times"
    )
    parser.add_argument(
        "--no-seal", action="store_true", help="relay without the sealer (events about nobody)"
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="5,000 rows, 5 rounds")
    size.add_argument("--smoke", action="store_true", help="1,000 rows: the smoke test's size")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.rounds = 5_000, 5
    if args.smoke:
        args.rows, args.rounds = 1_000, 1
    if min(args.rows, args.batch, args.rounds) < 1:
        parser.error("--rows, --batch and --rounds must be positive")
    counts: Counter[str] = Counter()
    install(counts)

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    cleanup = Cleanup()
    try:
        return asyncio.run(run(args, cleanup, counts))
    except KeyboardInterrupt:
        print("interrupted: cleaning up", file=sys.stderr)
        return 130
    finally:
        cleanup.run()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
