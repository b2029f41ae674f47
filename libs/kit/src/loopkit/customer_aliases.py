"""Who a customer id stands for now, kept locally so a late event (an order paid after its
customer was merged away, a lead after a forget) is counted for the live customer without asking
identity each time. Transport-free, like `loopkit.customer_rows`.

customer.merged aliases the merged id (and every id merged into it before) to the survivor;
customer.unmerged drops the restored id's alias and gives back, through the move log, the aliases
the merge re-pointed; customer.forgotten aliases the ids to nobody (an empty survivor), so their
late events write nothing naming them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import MetaData, Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from loopkit.customer_rows import repoint_customer
from loopkit.tables import CUSTOMER_ALIASES


def _aliases(metadata: MetaData) -> Table:
    table = metadata.tables.get(CUSTOMER_ALIASES)
    if table is None:
        raise RuntimeError(
            "this service keeps no aliases: add loopkit.tables.customer_aliases_table(metadata) "
            "to its models and a migration creating it"
        )
    return table


async def live_id(
    session: AsyncSession, metadata: MetaData, tenant_id: str, customer_id: str
) -> str:
    """The customer holding `customer_id` now: itself, its survivor, or "" if forgotten."""
    if not customer_id:
        return customer_id
    table = _aliases(metadata)
    found = await session.scalar(
        select(table.c.survivor_id).where(
            table.c.tenant_id == tenant_id, table.c.customer_id == customer_id
        )
    )
    return customer_id if found is None else found


async def alias(
    session: AsyncSession,
    metadata: MetaData,
    *,
    tenant_id: str,
    merged: str,
    survivor: str,
    merge_id: str,
) -> None:
    """`merged`, and every id merged into it before (logged, so an unmerge gives them back),
    now stand for `survivor`."""
    table = _aliases(metadata)
    await repoint_customer(
        session,
        [(table, "survivor_id")],
        tenant_id=tenant_id,
        from_id=merged,
        to_id=survivor,
        merge_id=merge_id,
    )
    await unalias(session, metadata, tenant_id=tenant_id, restored=merged)
    await session.execute(
        insert(table).values(
            tenant_id=tenant_id, customer_id=merged, survivor_id=survivor, merge_id=merge_id
        )
    )


async def unalias(
    session: AsyncSession, metadata: MetaData, *, tenant_id: str, restored: str
) -> None:
    """`restored` is a customer of its own again."""
    table = _aliases(metadata)
    await session.execute(
        delete(table).where(table.c.tenant_id == tenant_id, table.c.customer_id == restored)
    )


async def forget(
    session: AsyncSession, metadata: MetaData, *, tenant_id: str, customer_ids: Sequence[str]
) -> None:
    """The ids, and those merged into them, stand for nobody from now on."""
    table = _aliases(metadata)
    ids = [i for i in dict.fromkeys(customer_ids) if i]
    if not ids:
        return
    mine = table.c.tenant_id == tenant_id
    await session.execute(
        update(table).where(mine, table.c.survivor_id.in_(ids)).values(survivor_id="")
    )
    await session.execute(delete(table).where(mine, table.c.customer_id.in_(ids)))
    await session.execute(
        insert(table),
        [
            {"tenant_id": tenant_id, "customer_id": i, "survivor_id": "", "merge_id": ""}
            for i in ids
        ],
    )
