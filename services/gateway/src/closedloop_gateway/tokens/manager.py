"""Access tokens: cached per process, shared through the token table, and fetched from WeChat by
exactly one replica at a time (the holder of the app's lease).

WeChat invalidates an app's previous token when it issues a new one, so two replicas refreshing
the same app would keep knocking each other's tokens out. Every refresh therefore names the
generation it replaces: a replica that finds the generation already moved on adopts the token the
other one stored instead of fetching.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop_gateway import metrics
from closedloop_gateway.tokens import cipher, repository
from loopkit.accounts import Credential
from loopkit.db import transact, transact_read
from loopkit.errors import DependencyUnavailable
from loopkit.timestamps import now as utc_now
from loopkit.timestamps import utc

log = logging.getLogger(__name__)
# A token this close to its expiry is not worth adopting: the next call would refresh anyway.
_USABLE_MARGIN = timedelta(seconds=10)


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)
    generation: int
    expires_at: datetime


class TokenSource(Protocol):
    async def fetch(self, account: Credential) -> tuple[str, int]:
        """A new token from WeChat and its lifetime in seconds."""
        ...


class TokenManager:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        source: TokenSource,
        *,
        holder: str,
        refresh_ahead_s: float,
        lease_s: float,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sessions = sessions
        self._source = source
        self._holder = holder
        self._ahead = timedelta(seconds=refresh_ahead_s)
        self._margin = min(_USABLE_MARGIN, self._ahead / 2)
        self._lease = timedelta(seconds=lease_s)
        self._clock = clock
        self._cache: dict[str, Token] = {}
        # One refresher per app inside this process; the lease covers the other replicas.
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def _fresh(self, token: Token | None) -> bool:
        return token is not None and token.expires_at - self._ahead > self._clock()

    def _usable(self, token: Token | None) -> bool:
        return token is not None and token.expires_at - self._margin > self._clock()

    async def current(self, account: Credential) -> Token:
        """A token with more than `refresh_ahead_s` to live, refreshing it if needed."""
        cached = self._cache.get(account.account_id)
        if self._fresh(cached):
            assert cached is not None
            return cached
        async with self._locks[account.account_id]:
            cached = self._cache.get(account.account_id)
            if self._fresh(cached):
                assert cached is not None
                return cached
            stored = await self._read(account)
            if self._fresh(stored):
                assert stored is not None
                return self._keep(account, stored)
            return await self._refresh(account, stored.generation if stored else 0)

    async def rejected(self, account: Credential, token: Token) -> Token:
        """WeChat refused `token` (40001/42001/40014): the next one, fetched at most once."""
        async with self._locks[account.account_id]:
            cached = self._cache.get(account.account_id)
            if cached is not None and cached.generation > token.generation:
                return cached  # refreshed meanwhile in this process
            stored = await self._read(account)
            if stored is not None and stored.generation > token.generation:
                if self._usable(stored):
                    metrics.token_refresh(account.account_id, "adopted")
                    return self._keep(account, stored)
                return await self._refresh(account, stored.generation)
            return await self._refresh(account, token.generation)

    async def refresh_expiring(self, accounts: list[Credential]) -> int:
        """The background pass: refresh every token that enters its refresh-ahead window."""
        refreshed = 0
        for account in accounts:
            before = self._cache.get(account.account_id)
            await self.current(account)
            if self._cache.get(account.account_id) != before:
                refreshed += 1
        return refreshed

    def _keep(self, account: Credential, token: Token) -> Token:
        self._cache[account.account_id] = token
        return token

    async def _read(self, account: Credential) -> Token | None:
        async def work(session: AsyncSession) -> Token | None:
            row = await repository.read(session, account.account_id)
            if row is None or row.expires_at is None:
                return None
            value = cipher.unseal(account.secret, row.token_cipher)
            if value is None:
                return Token("", row.generation, utc(row.expires_at) - timedelta(days=1))
            return Token(value, row.generation, utc(row.expires_at))

        return await transact_read(self._sessions, work)

    async def _refresh(self, account: Credential, seen: int) -> Token:
        """Fetch under the lease, or wait for the replica holding it and adopt its token."""
        account_id = account.account_id
        await transact(self._sessions, lambda s: repository.ensure(s, account_id))
        deadline = self._clock() + self._lease * 2
        pause = 0.02
        while True:
            took = await self._take_lease(account_id, seen)
            if took:
                return await self._fetch_and_store(account, seen)
            stored = await self._read(account)
            if stored is not None and stored.generation > seen:
                if self._usable(stored):
                    metrics.token_refresh(account_id, "adopted")
                    return self._keep(account, stored)
                seen = stored.generation  # adopted-then-expired: refresh the newer one
                continue
            if self._clock() > deadline:
                raise DependencyUnavailable(
                    f"the access token of {account_id} is being refreshed by another replica "
                    "that does not finish"
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)

    async def _take_lease(self, account_id: str, seen: int) -> bool:
        at = self._clock()
        return await transact(
            self._sessions,
            lambda s: repository.take_lease(
                s,
                account_id,
                holder=self._holder,
                seen_generation=seen,
                at=at,
                until=at + self._lease,
            ),
        )

    async def _fetch_and_store(self, account: Credential, seen: int) -> Token:
        account_id = account.account_id
        try:
            value, expires_in = await self._source.fetch(account)
        except BaseException:
            await transact(
                self._sessions, lambda s: repository.release(s, account_id, self._holder)
            )
            metrics.token_refresh(account_id, "failed")
            raise
        at = self._clock()
        token = Token(value, seen + 1, at + timedelta(seconds=expires_in))
        sealed = cipher.seal(account.secret, value)
        stored = await transact(
            self._sessions,
            lambda s: repository.store(
                s,
                account_id,
                holder=self._holder,
                seen_generation=seen,
                sealed=sealed,
                expires_at=token.expires_at,
                at=at,
            ),
        )
        if not stored:
            # Our lease ran out while WeChat answered (slower than token_lease_s): another
            # replica may have fetched too. Use ours for now; its rejection will sort it out.
            log.warning(
                "token lease of %s expired during the fetch; raise token_lease_s", account_id
            )
        metrics.token_refresh(account_id, "fetched")
        log.info("access token of %s refreshed (generation %d)", account_id, token.generation)
        return self._keep(account, token)
