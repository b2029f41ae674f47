"""Quotas and pacing per (account, API): a token bucket paces calls in this replica at its share
of the pace (quotas/pace_share.py splits it between the live replicas), a daily counter in the
database keeps every replica together under the day's budget, and an over-limit
answer from WeChat pauses the API (visible in GetQuotaStatus and the metrics) instead of
dropping anything."""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop_gateway import metrics
from closedloop_gateway.quotas import repository
from closedloop_gateway.quotas.limits import ApiLimit, next_wechat_day, wechat_day
from loopkit.db import transact, transact_read
from loopkit.timestamps import now as utc_now
from loopkit.timestamps import utc_or_none

# WeChat's over-limit answers: the day's quota (45009), the minute's (45011), WeCom's
# concurrency / frequency limit (45033).
DAILY_LIMIT_ERRCODES = frozenset({45009})
RATE_LIMIT_ERRCODES = frozenset({45011, 45033})


class QuotaPaused(Exception):
    """The API is paused for this account until `until`; nothing was sent."""

    def __init__(self, account_id: str, api: str, until: datetime, errcode: int, errmsg: str):
        super().__init__(f"{api} of {account_id} is paused until {until.isoformat()}: {errmsg}")
        self.account_id = account_id
        self.api = api
        self.until = until
        self.errcode = errcode
        self.errmsg = errmsg


@dataclass(frozen=True)
class ApiQuotaView:
    api: str
    used_today: int
    daily_limit: int
    paused_until: datetime | None
    paused_errcode: int
    per_second: float


class _Bucket:
    """A token bucket: `rate` calls per second in bursts of at most an eighth of that, so any
    one-second window holds at most 1.125 x rate calls (90 % of a limit at 80 % headroom)."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._capacity = max(1.0, rate / 8)
        # Empty at first: a replica that just started never adds a burst to the pace.
        self._tokens = 0.0
        self._at = time.monotonic()
        self._lock = asyncio.Lock()

    def set_rate(self, rate: float) -> None:
        self._rate = rate
        self._capacity = max(1.0, rate / 8)
        self._tokens = min(self._tokens, self._capacity)

    async def take(self) -> None:
        async with self._lock:
            while True:
                moment = time.monotonic()
                self._tokens = min(self._capacity, self._tokens + (moment - self._at) * self._rate)
                self._at = moment
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self._rate)


class Quotas:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        limits: dict[str, ApiLimit],
        *,
        headroom: float,
        rate_limit_pause_s: float,
        clock: Callable[[], datetime] = utc_now,
        hold_off_s: float = 0.0,
    ) -> None:
        self._sessions = sessions
        # The per-second pace is split between the live replicas (quotas/pace_share.py); a new
        # replica makes no paced call until the others have counted it.
        self._replicas = 1
        self._paced_from = time.monotonic() + hold_off_s
        self._limits = limits
        self._headroom = headroom
        self._rate_pause = timedelta(seconds=rate_limit_pause_s)
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        # Per (account, API): calls counted in the database and not used yet, for the day...
        self._blocks: dict[tuple[str, str], tuple[str, int]] = {}
        self._block_locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)
        # ...and a pause this replica knows of (saves asking the database on every call).
        self._paused: dict[tuple[str, str], QuotaPaused] = {}

    def limit(self, api: str) -> ApiLimit:
        return self._limits.get(api, ApiLimit())

    def budget(self, api: str) -> int:
        """The day's calls the gateway allows itself (0 = not limited)."""
        daily = self.limit(api).daily
        return math.floor(daily * self._headroom) if daily else 0

    def pace(self, api: str) -> float:
        """This replica's calls per second for `api` (its share of the headroom's pace)."""
        return self.limit(api).per_second * self._headroom / self._replicas

    def hold_off(self, seconds: float) -> None:
        """No paced call for `seconds` (a new replica, until the others have counted it)."""
        self._paced_from = time.monotonic() + seconds

    def set_replicas(self, live: int) -> None:
        if live == self._replicas:
            return
        self._replicas = live
        for (_, api), bucket in self._buckets.items():
            bucket.set_rate(self.pace(api))

    async def acquire(self, account_id: str, api: str) -> None:
        """Wait for the pace, then count the call; raises QuotaPaused instead of calling."""
        rate = self.pace(api)
        if rate > 0:
            wait = self._paced_from - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            bucket = self._buckets.get((account_id, api))
            if bucket is None:
                bucket = self._buckets[(account_id, api)] = _Bucket(rate)
            await bucket.take()
        at = self._clock()
        day = wechat_day(at)
        key = (account_id, api)
        paused = self._paused.get(key)
        if paused is not None:
            if paused.until > at:
                raise paused
            del self._paused[key]  # over: the next reservation shows the API running again
        block = self._blocks.get(key)
        if block is not None and block[0] == day and block[1] > 0:
            self._blocks[key] = (day, block[1] - 1)
            return
        async with self._block_locks[key]:
            block = self._blocks.get(key)
            if block is not None and block[0] == day and block[1] > 0:
                self._blocks[key] = (day, block[1] - 1)
                return
            size = self._block_size(api)
            reserved = await transact(
                self._sessions, lambda s: self._reserve(s, key, day, size, at)
            )
            if isinstance(reserved, QuotaPaused):
                self._paused[key] = reserved
                metrics.quota(account_id, api, 1, 1, paused=True)
                raise reserved
            taken, used = reserved
            self._blocks[key] = (day, taken - 1)
            # Set as blocks are counted, so the quota panel follows use, not GetQuotaStatus calls.
            metrics.quota(account_id, api, used, self.limit(api).daily, paused=False)

    def _block_size(self, api: str) -> int:
        """Calls counted per database write: a few seconds of the pace, at most 1 % of the
        day's budget (the day's count may run that far ahead of the calls really made)."""
        budget = self.budget(api)
        size = max(1, math.ceil(self.pace(api) or 50))
        return max(1, min(size, budget // 100)) if budget else size

    async def _reserve(
        self, session: AsyncSession, key: tuple[str, str], day: str, size: int, at: datetime
    ) -> tuple[int, int] | QuotaPaused:
        """Count a block of up to `size` calls (fewer at the end of the budget): (taken, the day's
        count after it), or the pause."""
        account_id, api = key
        cap = self.budget(api)
        row = await repository.get(session, account_id, api, day)
        if row is None:
            session.add(repository.new_row(account_id, api, day, used=size))
            await session.flush()  # a concurrent replica's insert fails here; transact retries
            return size, size
        paused_until = utc_or_none(row.paused_until)
        if paused_until is not None and paused_until > at:
            return QuotaPaused(account_id, api, paused_until, row.paused_errcode, row.paused_errmsg)
        left = cap - row.used if cap else size
        if left <= 0:
            # The budget is used up: pause until the next WeChat day, as a 45009 would.
            row.paused_until = next_wechat_day(at)
            row.paused_errcode = 45009
            row.paused_errmsg = f"the gateway's daily budget of {cap} calls is used"
            return QuotaPaused(account_id, api, row.paused_until, 45009, row.paused_errmsg)
        taken = min(size, left)
        row.used += taken
        return taken, row.used

    def is_over_limit(self, errcode: int) -> bool:
        return errcode in DAILY_LIMIT_ERRCODES or errcode in RATE_LIMIT_ERRCODES

    async def over_limit(self, account_id: str, api: str, errcode: int, errmsg: str) -> QuotaPaused:
        """WeChat said the limit is reached: pause the API (till tomorrow for a daily limit)."""
        at = self._clock()
        until = next_wechat_day(at) if errcode in DAILY_LIMIT_ERRCODES else at + self._rate_pause
        day = wechat_day(at)

        async def work(session: AsyncSession) -> None:
            row = await repository.get(session, account_id, api, day)
            if row is None:
                row = repository.new_row(account_id, api, day, used=0)
                session.add(row)
            current = utc_or_none(row.paused_until)
            if current is None or current < until:
                row.paused_until = until
                row.paused_errcode = errcode
                row.paused_errmsg = errmsg[:300]

        await transact(self._sessions, work)
        metrics.quota(account_id, api, 0, 0, paused=True)
        paused = QuotaPaused(account_id, api, until, errcode, errmsg)
        self._paused[(account_id, api)] = paused
        self._blocks.pop((account_id, api), None)
        return paused

    async def status(self, account_id: str, apis: list[str]) -> list[ApiQuotaView]:
        at = self._clock()
        day = wechat_day(at)
        rows = await transact_read(self._sessions, lambda s: repository.of_day(s, account_id, day))
        by_api = {r.api: r for r in rows}
        views = []
        for api in sorted(set(apis) | set(by_api)):
            row = by_api.get(api)
            paused = utc_or_none(row.paused_until) if row else None
            if paused is not None and paused <= at:
                paused = None
            used = row.used if row else 0
            limit = self.limit(api)
            views.append(
                ApiQuotaView(
                    api=api,
                    used_today=used,
                    daily_limit=limit.daily,
                    paused_until=paused,
                    paused_errcode=row.paused_errcode if row and paused else 0,
                    per_second=limit.per_second,
                )
            )
            metrics.quota(account_id, api, used, limit.daily, paused=paused is not None)
        return views
