"""Background work in one form: call a tick every interval until the service drains."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

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
) -> None:
    """Calls `tick` at once and then every `interval_s` until `stop` is set; setting `wake`
    starts the next round at once (work arrived: a stored message, say).

    A failed round (the database is down, say) is logged and the next one runs as planned: the
    tick's units of work are retried by the next round, never half-applied.
    """
    while not stop.is_set():
        if wake is not None:
            wake.clear()
        try:
            await tick()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; next round in %.1f s", name, interval_s)
        await _pause(interval_s, stop, wake)


async def _pause(interval_s: float, stop: asyncio.Event, wake: asyncio.Event | None) -> None:
    if wake is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        return
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=interval_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def every(
    interval_s: float,
    tick: Callable[[], Awaitable[object]],
    *,
    name: str,
    wake: asyncio.Event | None = None,
) -> Worker:
    """A runtime worker (`runtime.add_worker(every(30, sweep.once, name="reward sweep"))`);
    `wake.set()` runs the next round without waiting for the interval."""

    async def worker(stop: asyncio.Event) -> None:
        await run_every(interval_s, tick, stop, name=name, wake=wake)

    return worker
