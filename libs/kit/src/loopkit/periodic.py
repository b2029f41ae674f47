"""Background work in one form: call a tick every interval until the service drains."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from loopkit.db import is_contention
from loopkit.outages import is_outage

log = logging.getLogger(__name__)

# What `ServiceRuntime.add_worker` takes: a loop that runs until the event is set.
Worker = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


async def run_every(
    interval_s: float,
    tick: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
    *,
    name: str,
    wake: asyncio.Event | None = None,
    on_wake: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Calls `tick` at once and then every `interval_s` until `stop` is set.

    A failed round (the database is down, say) is logged and the next one runs as planned: the
    tick's units of work are retried by the next round, never half-applied. When `wake` is set
    between rounds, `on_wake` (else `tick`) runs at once; the rounds keep their own schedule.
    """
    loop = asyncio.get_running_loop()
    next_round = loop.time()
    while not stop.is_set():
        if wake is not None:
            wake.clear()
        timed = loop.time() >= next_round
        if timed:
            next_round = loop.time() + interval_s
        try:
            await (tick() if timed or on_wake is None else on_wake())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_outage(exc) or is_contention(exc):
                # The database or a broker away, or a busy lock: expected now and then, and the
                # next round retries. One line, so an ERROR with a traceback still means a bug.
                log.warning("%s failed; next round in %.1f s: %s", name, interval_s, exc)
            else:
                log.exception("%s failed; next round in %.1f s", name, interval_s)
        await _first_of(stop, wake, timeout_s=max(0.0, next_round - loop.time()))


async def _first_of(stop: asyncio.Event, wake: asyncio.Event | None, *, timeout_s: float) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in (stop, wake) if e is not None]
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*waits, return_exceptions=True)


def every(
    interval_s: float,
    tick: Callable[[], Awaitable[object]],
    *,
    name: str,
    wake: asyncio.Event | None = None,
    on_wake: Callable[[], Awaitable[object]] | None = None,
) -> Worker:
    """A runtime worker (`runtime.add_worker(every(30, sweep.once, name="reward sweep"))`);
    `wake` lets a commit start `on_wake` (else `tick`) without waiting for the next round."""

    async def worker(stop: asyncio.Event) -> None:
        await run_every(interval_s, tick, stop, name=name, wake=wake, on_wake=on_wake)

    return worker
