"""Every query of the customer_keys table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sl_insert
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_identity.models import CustomerKeyRow, CustomerRow

_K = CustomerKeyRow


class KeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def status_and_keys(
        self, tenant_id: str, ids: Sequence[str]
    ) -> dict[str, tuple[str, bool, bytes | None]]:
        """(status, has a key row, key) of each id that names a customer of the tenant, in one
        statement: a customer's row joined with its key's."""
        rows = await self._session.execute(
            select(CustomerRow.id, CustomerRow.status, _K.customer_id, _K.key)
            .outerjoin(
                _K, and_(_K.tenant_id == CustomerRow.tenant_id, _K.customer_id == CustomerRow.id)
            )
            .where(CustomerRow.tenant_id == tenant_id, CustomerRow.id.in_(ids))
        )
        return {cid: (status, kid is not None, key) for cid, status, kid, key in rows.tuples()}

    async def add(self, tenant_id: str, keys: dict[str, bytes], at: datetime) -> None:
        """New keys in one statement; where a concurrent request created one first, its key
        stays (the caller re-reads)."""
        insert = pg_insert if self._session.get_bind().dialect.name == "postgresql" else sl_insert
        await self._session.execute(
            insert(_K)
            .values(
                [
                    {"tenant_id": tenant_id, "customer_id": cid, "key": key, "created_at": at}
                    for cid, key in keys.items()
                ]
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "customer_id"])
        )

    async def erase(self, tenant_id: str, ids: Sequence[str], at: datetime) -> None:
        """Destroy the keys of these customers, leaving an erased row for each, a customer who
        never had a key too: a GetCustomerKeys that read "no key yet" before this and writes one
        after it then finds that row and writes nothing (its insert waits for this transaction),
        so no key of a forgotten customer is ever handed out or kept."""
        if not ids:
            return
        insert = pg_insert if self._session.get_bind().dialect.name == "postgresql" else sl_insert
        erased = insert(_K).values(
            [
                {
                    "tenant_id": tenant_id,
                    "customer_id": cid,
                    "key": None,
                    "created_at": at,
                    "erased_at": at,
                }
                for cid in sorted(set(ids))
            ]
        )
        await self._session.execute(
            erased.on_conflict_do_update(
                index_elements=["tenant_id", "customer_id"],
                set_={"key": None, "erased_at": erased.excluded.erased_at},
            ).execution_options(synchronize_session=False)
        )
