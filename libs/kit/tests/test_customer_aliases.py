"""Aliases of merged-away and forgotten customers (loopkit.customer_aliases): chains of merges,
an unmerge in the middle of one, a forget (on PostgreSQL and SQLite)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from kit_testbed import Database
from loopkit import db
from loopkit.customer_aliases import alias, forget, live_id, unalias
from loopkit.customer_rows import give_back_customer
from loopkit.tables import customer_aliases_table, customer_moves_table

T = "t-kit"
META = db.new_metadata()
customer_moves_table(META)
customer_aliases_table(META)


async def lives(session: AsyncSession, *ids: str) -> list[str]:
    return [await live_id(session, META, T, i) for i in ids]


async def test_merges_chain_an_unmerge_gives_back_and_a_forget_leaves_nobody(
    database: Database,
) -> None:
    async with database.engine.begin() as conn:
        await conn.run_sync(META.create_all)
    async with database.sessions.begin() as s:
        await alias(s, META, tenant_id=T, merged="A", survivor="B", merge_id="m1")
        await alias(s, META, tenant_id=T, merged="B", survivor="C", merge_id="m2")
        assert await lives(s, "A", "B", "C", "D") == ["C", "C", "C", "D"]
        assert await live_id(s, META, "other", "A") == "A"
    async with database.sessions.begin() as s:
        # customer.unmerged of m2: B is its own again, and A (moved to C by m2) is B's again.
        await unalias(s, META, tenant_id=T, restored="B")
        await give_back_customer(
            s, META, tenant_id=T, merge_id="m2", restored_id="B", survivor_id="C"
        )
        assert await lives(s, "A", "B", "C") == ["B", "B", "C"]
    async with database.sessions.begin() as s:
        await forget(s, META, tenant_id=T, customer_ids=["B"])
        assert await lives(s, "A", "B", "C") == ["", "", "C"]
