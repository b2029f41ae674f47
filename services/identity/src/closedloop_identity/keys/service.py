"""Customer data keys (loopkit.pii): handed to the platform's relays and consumers, destroyed
when the customer is forgotten. Never commits: the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_identity.keys.repository import KeyRepository
from loopkit.errors import InvalidArgument
from loopkit.pii import new_key

MAX_IDS = 1000
# Told of the data keys this process created or destroyed (tenant, {customer id: key or None})
# once that is committed: the runtime's `remember_pii_keys`, so identity's own relay seals a new
# customer's events without reading the key back, and stops using a forgotten one's at once.
KeysKnown = Callable[[str, Mapping[str, bytes | None]], None]
_FORGOTTEN = "forgotten"


class KeyService:
    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now

    async def keys(
        self, session: AsyncSession, tenant_id: str, customer_ids: Sequence[str]
    ) -> dict[str, bytes | None]:
        """The key of every id asked (created on first request); None for a forgotten customer
        or an id that names no customer of the tenant (nothing may be sealed for it)."""
        ids = sorted({c for c in customer_ids if c})
        if not ids:
            raise InvalidArgument("customer_ids is required", field="customer_ids")
        if len(ids) > MAX_IDS:
            raise InvalidArgument(f"at most {MAX_IDS} customer_ids", field="customer_ids")
        repo = KeyRepository(session)
        # One statement when every key exists (a customer created by the direct resolve path has
        # one from its first statement on); each step is atomic alone, so this may run without a
        # transaction (`UnitOfWork.run(autocommit=True)`).
        found = await repo.status_and_keys(tenant_id, ids)
        missing = {
            cid: new_key()
            for cid, (status, has_key, _) in found.items()
            if not has_key and status != _FORGOTTEN
        }
        if missing:
            await repo.add(tenant_id, missing, self._now())
            found = await repo.status_and_keys(tenant_id, ids)
        answer: dict[str, bytes | None] = {}
        for cid in ids:
            status, _, key = found.get(cid, (_FORGOTTEN, False, None))
            answer[cid] = key if status != _FORGOTTEN else None
        return answer

    async def erase(
        self, session: AsyncSession, tenant_id: str, customer_ids: Sequence[str]
    ) -> None:
        """Destroy these customers' keys: every sealed copy of their data becomes unreadable."""
        await KeyRepository(session).erase(tenant_id, list(customer_ids), self._now())
