"""The unit of work a request, a consumer or a worker owns, and effects that wait for its commit.

Domain services take a session and never commit; the transport runs them in one `UnitOfWork`.
Anything that must not happen unless the transaction commits (a business metric, say) is handed
to `on_commit`: it runs once after the commit of that session, whoever owns it (`UnitOfWork`,
`loopkit.db.transact` or a consumer), and is dropped when the transaction rolls back, so a unit of
work retried after a unique-key race counts once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from loopkit.db import on_commit as on_commit  # services import it from here
from loopkit.db import transact, transact_read

T = TypeVar("T")


@dataclass(frozen=True)
class UnitOfWork:
    """One transaction per call of `run`, retried as a whole on races and deadlocks.

    `after_commit` runs after a successful commit that wrote events: the outbox relay's wake-up.
    """

    sessions: async_sessionmaker[AsyncSession]
    after_commit: Callable[[], None] | None = None
    attempts: int = 5

    async def run(
        self,
        work: Callable[[AsyncSession], Awaitable[T]],
        *,
        autocommit: bool = False,
        retry_races: bool = True,
    ) -> T:
        """`autocommit`: no BEGIN and COMMIT round trips on PostgreSQL, each statement commits
        alone; only for work whose every write is one atomic statement (`loopkit.db.transact`).
        `retry_races` False: a unique-key race (IntegrityError) is raised to the caller at once,
        who handles it another way; deadlocks and busy errors are still retried."""
        return await transact(
            self.sessions,
            work,
            attempts=self.attempts,
            after_commit=self.after_commit,
            autocommit=autocommit,
            retry_races=retry_races,
        )

    async def read(
        self, work: Callable[[AsyncSession], Awaitable[T]], *, one_snapshot: bool = False
    ) -> T:
        """`work` that only reads (a Get or List call), in a transaction that cannot write
        (`loopkit.db.transact_read`; a write in it fails). On SQLite it begins DEFERRED, so it reads
        its snapshot beside a writer instead of queueing behind it for the write lock (`run`
        begins IMMEDIATE: a read waited up to the 30 s busy timeout for a long write, and held up
        the writers while it read). PostgreSQL: `run`'s round trips, its BEGIN READ ONLY.
        `one_snapshot`: all its reads see one committed state (`loopkit.db.one_snapshot`)."""
        return await transact_read(
            self.sessions, work, attempts=self.attempts, snapshot=one_snapshot
        )
