"""The direct path's statements keep plans that cannot read a tenant's every identity or customer.

asyncpg prepares each statement once per connection, and PostgreSQL may keep a generic plan made
when the tables were empty or never analysed; a join the planner turned into a scan of the
tenant's entries of the unique key (or of the customers' tenant index) then stays in that
connection as the tables grow. So the generic plan of each statement is checked on empty tables
and on a large, unanalysed tenant: the claims must be probed on all four columns of the unique
key, and nothing may be scanned by tenant alone or sequentially."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from closedloop_identity.resolve.statements import _extend_statement, _first_look_statement

STATEMENTS = {
    "first_look": _first_look_statement(()),
    "extend": _extend_statement(()),
}
TABLES = ("identities", "customers")


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def _generic_plan(connection: Any, name: str, sql: str, arity: int) -> list[dict[str, Any]]:
    """Every node of the plan PostgreSQL keeps for `sql` once it stops planning per call."""
    await connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
    await connection.exec_driver_sql(f"PREPARE {name} AS {sql}")
    try:
        # A generic plan does not depend on the values: NULLs are enough to show it.
        nulls = ", ".join(["NULL"] * arity)
        explained = await connection.exec_driver_sql(
            f"EXPLAIN (FORMAT JSON) EXECUTE {name}({nulls})"
        )
        found = explained.scalar_one()
        plan = (json.loads(found) if isinstance(found, str) else found)[0]["Plan"]
        return list(_nodes(plan))
    finally:
        await connection.exec_driver_sql(f"DEALLOCATE {name}")


def _problems(nodes: list[dict[str, Any]]) -> list[str]:
    problems = []
    for node in nodes:
        relation, index, cond = (
            node.get("Relation Name"),
            node.get("Index Name", ""),
            node.get("Index Cond", ""),
        )
        if node["Node Type"] == "Seq Scan" and relation in TABLES:
            problems.append(f"sequential scan of {relation}")
        if "tenant_id" in cond and not all(c in cond for c in ("kind", "scope", "value")):
            problems.append(f"{index} by tenant alone: {cond}")
    return problems


def _probes_by_claim(nodes: list[dict[str, Any]]) -> bool:
    return any(
        all(c in n.get("Index Cond", "") for c in ("tenant_id", "kind", "scope", "value"))
        for n in nodes
    )


async def _check(engine: Any) -> None:
    async with engine.connect() as connection:
        for name, statement in STATEMENTS.items():
            nodes = await _generic_plan(connection, name, statement.sql, len(statement.names))
            assert _probes_by_claim(nodes), f"{name}: no probe of the unique key per claim"
            assert not _problems(nodes), f"{name}: {_problems(nodes)}"


@pytest.mark.parametrize("identity", ["postgres"], indirect=True)
async def test_generic_plans_probe_each_claim_on_empty_and_unanalysed_tables(identity):
    engine = identity.runtime.engine
    async with engine.begin() as connection:
        for table in TABLES:
            # No statistics ever: the plans below must not depend on autovacuum having run.
            await connection.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = false)"))
    await _check(engine)  # what a connection prepared at the service's start would keep
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO customers (id, tenant_id, status, attributes, created_at, updated_at)"
                " SELECT 'c' || g, 't-many', 'active', '{}', now(), now()"
                " FROM generate_series(1, 20000) g"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO identities (id, tenant_id, customer_id, kind, scope, value, verified,"
                " created_at) SELECT 'i' || g, 't-many', 'c' || g, 'wechat_openid', 'wx', 'o' || g,"
                " false, now() FROM generate_series(1, 20000) g"
            )
        )
    await _check(engine)
