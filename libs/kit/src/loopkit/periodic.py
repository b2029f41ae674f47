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
    interval_s: float, tick: Callable[[], Awaitable[object]], stop: asyncio.Event, *, name: str
) -> None:
    """Calls `tick` at once and then every `interval_s` until `stop` is set.

    A failed round (the database is down, say) is logged and the next one runs as planned: the
    tick's units of work are retried by the next round, never half-applied.
    """
    while not stop.is_set():
        try:
            await tick()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; next round in %.1f s", name, interval_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)


def every(interval_s: float, tick: Callable[[], Awaitable[object]], *, name: str) -> Worker:
    """A runtime worker (`runtime.add_worker(every(30, sweep.once, name="reward sweep"))`)."""

    async def worker(stop: asyncio.Event) -> None:
        await run_every(interval_s, tick, stop, name=name)

    return worker
