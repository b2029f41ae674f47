"""The heartbeat of this replica's share of the per-second pace (quotas/pace_share.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from closedloop_gateway.quotas.pace_share import PaceShare

log = logging.getLogger(__name__)


async def run_heartbeat(share: PaceShare, interval_s: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await share.beat()
        except Exception as exc:
            # The database is away: keep the last share; the row expires if this goes on.
            log.warning("pace heartbeat failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
    with contextlib.suppress(Exception):
        await share.leave()
