"""Identity's own outbox relay seals with keys read from its database (a `loopkit.pii.KeySource`,
the same answer other services get from GetCustomerKeys)."""

from __future__ import annotations

from collections.abc import Sequence

from closedloop_identity.keys.service import KeyService
from loopkit.uow import UnitOfWork


class LocalKeys:
    def __init__(self, uow: UnitOfWork, keys: KeyService) -> None:
        self._uow = uow
        self._keys = keys

    async def keys(self, tenant_id: str, customer_ids: Sequence[str]) -> dict[str, bytes | None]:
        return await self._uow.run(
            lambda s: self._keys.keys(s, tenant_id, customer_ids), autocommit=True
        )
