"""Runs a service module with every database round trip it makes counted.

    python bench/_statements.py COUNTS_FILE -m closedloop_identity

SQLAlchemy event hooks installed before the service starts count, per side (the request path, or
the outbox relay, told apart by their SQL), the SQL statements, the transactions (each one a BEGIN
and a COMMIT/ROLLBACK round trip; autocommit connections have none) and the pre-ping of a pooled
connection at checkout (`pool_pre_ping`, a round trip of its own); and the cyclic GC's
collections with their pauses (`install_gc`). On SIGUSR1 the counts so far are
written to COUNTS_FILE as JSON with a sequence number, so a benchmark can read them before and
after a cell (`read_counts`). pg_stat_statements would need a server restart to load; this needs
nothing from the server.
"""

from __future__ import annotations

import gc
import json
import os
import re
import runpy
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

# The relay's statements: reading, claiming, marking and deleting (once a personal event is sent)
# outbox rows. A service writing a row says INSERT INTO outbox, which is the request's.
_RELAY = re.compile(
    r"^\s*(SELECT\b.{0,200}?\bFROM outbox\b|UPDATE outbox\b|DELETE FROM outbox\b"
    r"|SELECT pg_advisory_unlock_all)",
    re.S,
)
SIDES = ("request", "relay")


def _side(statement: str) -> str:
    return "relay" if _RELAY.match(statement[:300]) else "request"


def install_gc(counts: Counter[str]) -> None:
    """Counts the cyclic GC's collections by generation, with the time they stopped the process
    (`gc N`, `gc N us`) and the longest since the last dump (`gc max us`): pauses that land on
    whichever requests are in flight, i.e. on the tail latency."""
    started = [0.0]

    def collected(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        us = int((time.perf_counter() - started[0]) * 1e6)
        counts[f"gc {info['generation']}"] += 1
        counts[f"gc {info['generation']} us"] += us
        counts["gc max us"] = max(counts["gc max us"], us)

    gc.callbacks.append(collected)


def install(counts: Counter[str]) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Connection, Engine

    @event.listens_for(Engine, "engine_connect")
    def _checkout(conn: Connection) -> None:
        # A connection taken from the pool: pinged first when the pool pre-pings.
        if getattr(conn.engine.pool, "_pre_ping", False):
            conn.info["bench_pinged"] = True

    @event.listens_for(Engine, "begin")
    def _begin(conn: Connection) -> None:
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            conn.info["bench_tx"] = True

    @event.listens_for(Engine, "before_cursor_execute")
    def _statement(conn: Connection, *args: Any) -> None:
        side = _side(args[1])
        counts[f"{side} statements"] += 1
        # A transaction and a ping belong to the side of the first statement after them.
        if conn.info.pop("bench_tx", False):
            counts[f"{side} transactions"] += 1
        if conn.info.pop("bench_pinged", False):
            counts[f"{side} pings"] += 1


def read_counts(path: Path, pid: int, timeout_s: float = 10.0) -> Counter[str]:
    """Ask the counting process for its counts (SIGUSR1) and wait for the fresh file."""
    before = _load(path).get("seq", -1)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        data = _load(path)
        if data.get("seq", -1) > before:
            return Counter({k: int(v) for k, v in data["counts"].items()})
        time.sleep(0.01)
    raise TimeoutError(f"no statement counts from process {pid}")


def round_trips(counts: Counter[str], side: str) -> int:
    """Statements + BEGIN and COMMIT per transaction + pre-pings."""
    return (
        counts[f"{side} statements"] + 2 * counts[f"{side} transactions"] + counts[f"{side} pings"]
    )


def _load(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def main() -> None:
    if len(sys.argv) < 4 or sys.argv[2] != "-m":
        sys.exit("usage: _statements.py COUNTS_FILE -m MODULE")
    path, module = Path(sys.argv[1]), sys.argv[3]
    counts: Counter[str] = Counter()
    seq = 0

    def dump(_signum: int, _frame: object) -> None:
        nonlocal seq
        seq += 1
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"seq": seq, "counts": dict(counts)}))
        tmp.replace(path)
        counts["gc max us"] = 0  # the longest pause since the last dump

    signal.signal(signal.SIGUSR1, dump)
    install(counts)
    install_gc(counts)
    sys.argv = [module, *sys.argv[4:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
