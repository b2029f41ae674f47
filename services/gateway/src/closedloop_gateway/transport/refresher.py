"""The background token refresher: every few seconds, each app's token that enters its
refresh-ahead window is refreshed (by whichever replica takes the lease), so calls rarely wait."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from closedloop_gateway.tokens.manager import TokenManager
from loopkit.accounts import AccountRegistry

log = logging.getLogger(__name__)


class TokenRefresher:
    def __init__(self, tokens: TokenManager, registry: AccountRegistry, interval_s: float) -> None:
        self._tokens = tokens
        self._accounts = list(registry.credentials())
        self._interval_s = interval_s

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for account in self._accounts:
                try:
                    await self._tokens.current(account)
                except Exception as exc:
                    # WeChat or the database is away; calls retry on their own, and so do we.
                    log.warning("token refresh of %s failed: %s", account.account_id, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval_s)
