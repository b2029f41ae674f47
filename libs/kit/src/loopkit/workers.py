"""Several worker processes of one service (`CLOSEDLOOP_WORKERS` = N > 1), so a pod uses every core.

The parent is a small supervisor: it starts N copies of `python -m <service module>`, each marked
with its index in `CLOSEDLOOP_WORKER_INDEX`, forwards SIGTERM/SIGINT to them and waits for them to
drain. A worker that dies while nobody asked it to stop makes the supervisor stop the others and
exit non-zero: the container restarts as a whole (Kubernetes' restart policy, `make run`'s crash
report), rather than the parent hiding a crash loop behind a pod that still looks ready.

What each worker serves (see docs/operations.md, "Worker processes"):
- gRPC on the same port in every worker (`SO_REUSEPORT`: the kernel spreads connections);
- HTTP (the service's routes, /healthz, /readyz, /metrics) in worker 0 only, so a Prometheus
  scrape always reads the same process's counters;
- the outbox relay, consumers and background loops in every worker (safe on PostgreSQL: the relay
  claims rows under advisory locks, consumers share durable consumers). SQLite is refused.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from types import FrameType

from loopkit.db import is_sqlite
from loopkit.settings import ServiceSpec, Settings

# Set by the supervisor in each worker's environment; absent in a single-process service.
WORKER_INDEX_ENV = "CLOSEDLOOP_WORKER_INDEX"
# The gRPC health service name a worker reports SERVING under, so a caller can tell which worker
# answered (`grpc_health_probe -service closedloop.worker.1`).
WORKER_HEALTH_PREFIX = "closedloop.worker."
_POLL_S = 0.2

log = logging.getLogger(__name__)


class WorkersRefused(SystemExit):
    """A worker count this configuration cannot run; the message says why."""


def worker_index() -> int | None:
    """This process's index among the service's workers, None when it is not a worker."""
    value = os.environ.get(WORKER_INDEX_ENV)
    return int(value) if value else None


def check_workers(settings: Settings) -> None:
    """Refuse N > 1 where several processes cannot work: SQLite serialises writers (one process
    per file), and a port chosen by the kernel (0) would differ per worker."""
    if settings.workers <= 1:
        return
    if is_sqlite(settings.resolved_database_url()):
        raise WorkersRefused(
            f"{settings.service}: CLOSEDLOOP_WORKERS={settings.workers} needs PostgreSQL; SQLite "
            "serialises writers, so run one worker (CLOSEDLOOP_WORKERS=1) on SQLite"
        )
    if settings.grpc_port == 0:
        raise WorkersRefused(
            f"{settings.service}: CLOSEDLOOP_WORKERS={settings.workers} needs a fixed "
            "CLOSEDLOOP_GRPC_PORT (the workers share it)"
        )


def supervise(spec: ServiceSpec, settings: Settings) -> int:
    """Run `settings.workers` workers until they stop; returns the supervisor's exit code."""
    check_workers(settings)
    stopping = False
    children: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for index in range(settings.workers):
        env = dict(os.environ, **{WORKER_INDEX_ENV: str(index)})
        children.append(subprocess.Popen([sys.executable, "-m", spec.module], env=env))
    log.info("%s: %d workers, pids %s", spec.name, len(children), [child.pid for child in children])
    crashed: int | None = None
    while True:
        codes = [child.poll() for child in children]  # every child, not up to the first alive
        if all(code is not None for code in codes):
            break
        if not stopping:
            dead = [c for c in children if c.returncode is not None]
            if dead:
                crashed = dead[0].returncode
                log.error(
                    "%s worker pid %d exited with %s; stopping the other workers",
                    spec.name,
                    dead[0].pid,
                    crashed,
                )
                forward(signal.SIGTERM, None)
        time.sleep(_POLL_S)
    if crashed is not None:
        return 1
    # A worker stopped by the forwarded signal before it installed its handlers is a clean stop.
    clean = {0, -signal.SIGTERM, -signal.SIGINT}
    return 0 if {child.returncode for child in children} <= clean else 1
