"""The per-second pace split between the live replicas: each replica renews its row in
`gateway_replicas` every heartbeat and paces at 1 / (live replicas) of every per-second limit,
so N replicas together stay under `per_second x headroom` (the daily count is shared through
`quota_usage` already).

A replica that starts is counted by the others at their next heartbeat: until one heartbeat (and
a margin) has passed it makes no paced call (Quotas' hold-off). A replica that stops deletes its
row; one that dies is dropped after three heartbeats, and the others then speed up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop_gateway.models import ReplicaRow
from closedloop_gateway.quotas.service import Quotas
from loopkit.db import transact
from loopkit.timestamps import now as utc_now

# A replica missing this many heartbeats is gone.
MISSED_BEATS = 3


class PaceShare:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        quotas: Quotas,
        *,
        holder: str,
        heartbeat_s: float,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sessions = sessions
        self._quotas = quotas
        self._holder = holder
        self._ttl = timedelta(seconds=heartbeat_s * MISSED_BEATS)
        self._hold_off_s = heartbeat_s * 1.5
        self._counted = False
        self._clock = clock

    async def beat(self) -> int:
        """Renew this replica's row and pace at its share; returns the live replicas."""
        at = self._clock()

        async def work(session: AsyncSession) -> int:
            renewed: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
                update(ReplicaRow)
                .where(ReplicaRow.replica_id == self._holder)
                .values(seen_until=at + self._ttl)
            )
            if renewed.rowcount == 0:
                session.add(ReplicaRow(replica_id=self._holder, seen_until=at + self._ttl))
                await session.flush()
            live = await session.scalar(
                select(func.count()).select_from(ReplicaRow).where(ReplicaRow.seen_until > at)
            )
            return max(1, int(live or 0))

        live = await transact(self._sessions, work)
        if not self._counted:
            # From now on the others count this replica at their next heartbeat.
            self._counted = True
            self._quotas.hold_off(self._hold_off_s)
        self._quotas.set_replicas(live)
        return live

    async def leave(self) -> None:
        """This replica stops: the others take its share at their next heartbeat."""
        await transact(
            self._sessions,
            lambda s: s.execute(delete(ReplicaRow).where(ReplicaRow.replica_id == self._holder)),
        )
