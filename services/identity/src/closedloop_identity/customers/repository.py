"""Every query of customers, their identities and the audit trail (the tables this concept owns),
and the locks every write path takes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_identity.customers.identities import IdentityKey
from closedloop_identity.models import AuditRow, CustomerRow, IdentityRow

ACTIVE, MERGED, FORGOTTEN = "active", "merged", "forgotten"
# A merge chain longer than this is a bug, not data: stop rather than loop.
MAX_CHAIN = 64


def _lock_key(tenant_id: str, key: IdentityKey) -> int:
    digest = hashlib.blake2b(
        f"{tenant_id}\x00{key.kind}\x00{key.scope}\x00{key.value}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


class CustomerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._postgres = session.get_bind().dialect.name == "postgresql"

    # --- locks (PostgreSQL; SQLite serialises writers with BEGIN IMMEDIATE) -----------------

    async def lock_identities(self, tenant_id: str, keys: Iterable[IdentityKey]) -> None:
        """Transaction-scoped locks on identity values, taken in one global order, so concurrent
        resolves of overlapping identities queue instead of racing to create two customers."""
        if not self._postgres:
            return
        for lock in sorted({_lock_key(tenant_id, k) for k in keys}):
            await self.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})

    async def lock_customers(self, ids: Iterable[str]) -> list[CustomerRow]:
        """Row locks on customers in id order (the second lock level, after identities)."""
        ordered = sorted(set(ids))
        if not ordered:
            return []
        stmt = select(CustomerRow).where(CustomerRow.id.in_(ordered)).order_by(CustomerRow.id)
        if self._postgres:
            stmt = stmt.with_for_update()
        rows = (
            await self.session.execute(stmt.execution_options(populate_existing=True))
        ).scalars()
        return list(rows)

    # --- customers ------------------------------------------------------------------------

    def add(self, row: object) -> None:
        self.session.add(row)

    async def flush(self) -> None:
        await self.session.flush()

    async def get(self, tenant_id: str, customer_id: str) -> CustomerRow | None:
        row = await self.session.get(CustomerRow, customer_id)
        return row if row is not None and row.tenant_id == tenant_id else None

    async def follow(self, tenant_id: str, customer_id: str) -> CustomerRow | None:
        """The customer an id stands for today: itself, or the survivor it was merged into."""
        row = await self.get(tenant_id, customer_id)
        for _ in range(MAX_CHAIN):
            if row is None or row.status != MERGED or row.merged_into is None:
                return row
            row = await self.get(tenant_id, row.merged_into)
        raise RuntimeError(f"merge chain of {customer_id} longer than {MAX_CHAIN}")

    async def merged_into(self, tenant_id: str, survivor_id: str) -> list[str]:
        """Ids merged into `survivor_id`, directly or through earlier merges."""
        found: list[str] = []
        frontier = [survivor_id]
        while frontier and len(found) < 10_000:
            stmt = select(CustomerRow.id).where(
                CustomerRow.tenant_id == tenant_id,
                CustomerRow.merged_into.in_(frontier),
                CustomerRow.status != ACTIVE,
            )
            frontier = list((await self.session.execute(stmt)).scalars())
            found.extend(frontier)
        return found

    async def count_live(self, tenant_id: str) -> int:
        stmt = (
            select(func.count())
            .select_from(CustomerRow)
            .where(CustomerRow.tenant_id == tenant_id, CustomerRow.status == ACTIVE)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    # --- identities -----------------------------------------------------------------------

    async def find_identities(
        self, tenant_id: str, keys: Sequence[IdentityKey]
    ) -> list[IdentityRow]:
        if not keys:
            return []
        conditions = [
            (IdentityRow.kind == k.kind)
            & (IdentityRow.scope == k.scope)
            & (IdentityRow.value == k.value)
            for k in keys
        ]
        stmt = select(IdentityRow).where(IdentityRow.tenant_id == tenant_id, or_(*conditions))
        rows = await self.session.execute(stmt.execution_options(populate_existing=True))
        return list(rows.scalars())

    async def identities_of(self, customer_ids: Sequence[str]) -> list[IdentityRow]:
        stmt = (
            select(IdentityRow)
            .where(IdentityRow.customer_id.in_(customer_ids))
            .order_by(IdentityRow.kind, IdentityRow.scope, IdentityRow.value)
        )
        rows = await self.session.execute(stmt.execution_options(populate_existing=True))
        return list(rows.scalars())

    async def move_identities(self, from_id: str, to_id: str) -> list[str]:
        ids = list(
            (
                await self.session.execute(
                    select(IdentityRow.id).where(IdentityRow.customer_id == from_id)
                )
            ).scalars()
        )
        if ids:
            await self.session.execute(
                update(IdentityRow).where(IdentityRow.id.in_(ids)).values(customer_id=to_id)
            )
        return ids

    async def move_identity_ids(self, ids: Sequence[str], from_id: str, to_id: str) -> int:
        result = await self.session.execute(
            update(IdentityRow)
            .where(IdentityRow.id.in_(ids), IdentityRow.customer_id == from_id)
            .values(customer_id=to_id)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def delete_identity(self, row: IdentityRow) -> None:
        await self.session.delete(row)

    async def delete_identities_of(self, customer_ids: Sequence[str]) -> None:
        await self.session.execute(
            delete(IdentityRow).where(IdentityRow.customer_id.in_(customer_ids))
        )

    async def search(
        self, tenant_id: str, kinds_values: Sequence[tuple[str | None, str]], limit: int
    ) -> list[str]:
        conditions = [
            (IdentityRow.value == value) & (IdentityRow.kind == kind if kind else True)
            for kind, value in kinds_values
        ]
        stmt = (
            select(IdentityRow.customer_id)
            .where(IdentityRow.tenant_id == tenant_id, or_(*conditions))
            .distinct()
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    # --- audit -------------------------------------------------------------------------

    async def history(self, tenant_id: str, customer_ids: Sequence[str]) -> list[AuditRow]:
        stmt = (
            select(AuditRow)
            .where(AuditRow.tenant_id == tenant_id, AuditRow.customer_id.in_(customer_ids))
            .order_by(AuditRow.at, AuditRow.id)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def erase_audit_values(self, tenant_id: str, customer_ids: Sequence[str]) -> None:
        await self.session.execute(
            update(AuditRow)
            .where(AuditRow.tenant_id == tenant_id, AuditRow.customer_id.in_(customer_ids))
            .values(identity_value=None, identity_scope=None)
        )
