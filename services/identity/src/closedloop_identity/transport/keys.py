"""Identity's own outbox relay seals with keys read from its database (a `loopkit.pii.KeySource`,
the same answer other services get from GetCustomerKeys)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop_identity.keys.service import KeyService
from loopkit.db import transact


class LocalKeys:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], keys: KeyService) -> None:
        self._sessions = sessions
        self._keys = keys

    async def keys(self, tenant_id: str, customer_ids: Sequence[str]) -> dict[str, bytes | None]:
        return await transact(self._sessions, lambda s: self._keys.keys(s, tenant_id, customer_ids))
