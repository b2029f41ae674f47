"""Rows that name a customer, kept right when identity merges customers. Transport-free, so a
service's domain and repositories may use it (the subscription wiring is in customer_events)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, update
from sqlalchemy.ext.asyncio import AsyncSession


async def repoint_customer(
    session: AsyncSession,
    columns: Iterable[tuple[Table | type[Any], str]],
    *,
    tenant_id: str,
    from_id: str,
    to_id: str,
) -> int:
    """Move every (table or ORM class, column) reference of `from_id` to `to_id` in the tenant.

    Tables with a uniqueness rule involving the customer (one lead per customer and campaign, say)
    must resolve the collision themselves before calling this.
    """
    moved = 0
    for model, column in columns:
        table: Table = model if isinstance(model, Table) else model.__table__
        result = await session.execute(
            update(table)
            .where(table.c.tenant_id == tenant_id, table.c[column] == from_id)
            .values({column: to_id})
        )
        moved += int(getattr(result, "rowcount", 0) or 0)
    return moved
