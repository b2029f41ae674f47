"""The common ResolveCustomer cases in one statement each: the first look, and extending a customer.

*First look*: who holds the claimed identities, with everything the answer needs about them (their
identities, attributes and merged ids), and, when nobody holds any of them, the new customer written
with its identities, audit rows and event in the same statement. *Extend*: attach unknown claims to
the one customer that holds the others, upgrade verification and merge attributes, with audit and
events, row-locking the customer; it refuses (returns None) when that customer was merged away in
between. Everything else (a possible merge, an expired pending id) takes the locking path in the
service.

On PostgreSQL each is one data-modifying CTE: a create that races another resolve of the same
identity fails on the unique (tenant, kind, scope, value) key, and the unit of work runs again and
finds the winner. SQLite serialises writers (BEGIN IMMEDIATE), so the same steps run as a few local
statements there.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import (
    Table,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_identity.customers.identities import IdentityKey, Kind
from closedloop_identity.customers.repository import ACTIVE, MAX_CHAIN
from closedloop_identity.models import CustomerRow, IdentityRow
from loopkit import raw_sql

CUSTOMERS: Table = CustomerRow.__table__  # type: ignore[assignment]
IDENTITIES: Table = IdentityRow.__table__  # type: ignore[assignment]
Rows = list[tuple[Table, list[dict[str, Any]]]]


@dataclass(frozen=True)
class HeldIdentity:
    key: IdentityKey
    verified: bool
    expires_at: datetime | None


@dataclass
class Holder:
    """A live customer holding at least one claimed identity, as the first look saw it."""

    customer_id: str
    status: str
    created_at: datetime
    attributes: dict[str, Any]
    identities: dict[IdentityKey, HeldIdentity] = field(default_factory=dict)
    merged_ids: list[str] = field(default_factory=list)


class ResolveStatements(Protocol):
    async def first_look(
        self, session: AsyncSession, tenant_id: str, keys: list[IdentityKey], creation: Rows
    ) -> dict[str, Holder]:
        """The holders of `keys`; when there are none, `creation` was written (rows in order)."""

    async def extend(
        self,
        session: AsyncSession,
        tenant_id: str,
        customer_id: str,
        *,
        upgrade: list[IdentityKey],
        attributes: dict[str, Any],
        now: datetime,
        rows: Rows,
    ) -> dict[str, Any] | None:
        """The customer's attributes after the change, or None (nothing written) if it is no
        longer active."""


def statements_for(session: AsyncSession) -> ResolveStatements:
    if session.get_bind().dialect.name == "postgresql":
        return PostgresResolveStatements()
    return SqliteResolveStatements()


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _held(
    kind: str, scope: str, value: str, verified: bool, expires: datetime | None
) -> HeldIdentity:
    return HeldIdentity(
        IdentityKey(Kind(kind), scope, value),
        bool(verified),
        _utc(expires) if expires is not None else None,
    )


# --- PostgreSQL: one statement each -------------------------------------------------------------


def _insert_cte(name: str, table: Table, guard: str) -> str:
    """`name AS (INSERT INTO table SELECT ... FROM json_populate_recordset(...) WHERE guard)`: the
    rows travel as one JSON parameter `name` (see `_insert_params`), typed by the table's own row
    type. One parameter per table, not an array per column: asyncpg encoded ~45 one-element
    arrays per resolve at ~1 us each, and building them per column cost as much again."""
    columns = ", ".join(c.name for c in table.columns)
    return (
        f"{name} AS (INSERT INTO {table.name} ({columns}) "
        f"SELECT {columns} FROM json_populate_recordset(NULL::{table.name}, CAST(:{name} AS json))"
        f" WHERE {guard})"
    )


def _json_value(value: Any) -> Any:
    """A value json.dumps cannot write, as json_populate_recordset reads it back into its column
    type (json.dumps calls this for those values only)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return "\\x" + value.hex()  # bytea's hex input form
    raise TypeError(f"{type(value).__name__} has no JSON form for a row")


def _insert_params(name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The rows as they are: json_populate_recordset reads each column of the table by name (a
    missing key is NULL, a key that is no column is ignored), so no per-column copy is made."""
    return {name: json.dumps(rows, ensure_ascii=False, default=_json_value)}


def _inserts(rows: Rows) -> tuple[tuple[Table, ...], dict[str, Any]]:
    """The tables that get rows (the statement's shape) and the parameters carrying them."""
    tables, params = [], {}
    for table, table_rows in rows:
        if table_rows:
            tables.append(table)
            params.update(_insert_params(f"ins_{table.name}", table_rows))
    return tuple(tables), params


def _keys_params(keys: list[IdentityKey]) -> dict[str, Any]:
    return {
        "k_kind": [str(k.kind) for k in keys],
        "k_scope": [k.scope for k in keys],
        "k_value": [k.value for k in keys],
    }


_KEYS = (
    "SELECT * FROM unnest(CAST(:k_kind AS text[]), CAST(:k_scope AS text[]), "
    "CAST(:k_value AS text[])) AS k(kind, scope, value)"
)

# The holders, all their identities and the ids merged into them (following merge chains), as one
# result: 'c' rows (customer), 'i' rows (identity), 'm' rows (merged id, `a` is the holder).
_FIRST_LOOK_ANSWER = """
SELECT 'c' AS tag, c.id AS customer_id, c.status AS a, NULL AS b, NULL AS v,
       NULL::boolean AS verified, c.created_at AS at, CAST(c.attributes AS text) AS attributes
  FROM customers c WHERE c.id IN (SELECT customer_id FROM found)
UNION ALL
SELECT 'i', i.customer_id, i.kind, i.scope, i.value, i.verified, i.expires_at, NULL
  FROM identities i WHERE i.customer_id IN (SELECT customer_id FROM found)
UNION ALL
SELECT 'm', m.id, m.root, NULL, NULL, NULL, NULL, NULL FROM merged m
"""


@functools.cache
def _first_look_statement(tables: tuple[Table, ...]) -> raw_sql.Positional:
    """The first look, writing the creation's rows into `tables` when nobody holds the claims.
    Cached per shape: building and parsing the text costs more than running it."""
    guard = "NOT EXISTS (SELECT 1 FROM found)"
    ctes = [
        f"WITH RECURSIVE claimed AS ({_KEYS})",
        "found AS (SELECT DISTINCT i.customer_id FROM claimed k CROSS JOIN LATERAL"
        " (SELECT customer_id FROM identities WHERE tenant_id = :tenant AND kind = k.kind"
        " AND scope = k.scope AND value = k.value OFFSET 0) i)",
        "merged(id, root, depth) AS ("
        " SELECT c.id, c.merged_into, 1 FROM customers c"
        " WHERE c.merged_into IN (SELECT customer_id FROM found) AND c.status <> 'active'"
        # LATERAL (kept a subquery by OFFSET 0) makes each step an index lookup on merged_into: a
        # plain join may be planned as a hash join over every customer of the database.
        " UNION ALL SELECT c.id, m.root, m.depth + 1 FROM merged m"
        " CROSS JOIN LATERAL (SELECT id FROM customers WHERE merged_into = m.id"
        f" AND status <> 'active' OFFSET 0) c WHERE m.depth < {MAX_CHAIN})",
        *(_insert_cte(f"ins_{t.name}", t, guard) for t in tables),
    ]
    return raw_sql.positional(",\n".join(ctes) + "\n" + _FIRST_LOOK_ANSWER)


@functools.cache
def _extend_statement(tables: tuple[Table, ...]) -> raw_sql.Positional:
    # The UPDATE is the row lock: a concurrent merge of this customer either waits for us or has
    # already marked it merged, and then nothing here matches and nothing is written.
    guard = "EXISTS (SELECT 1 FROM locked)"
    ctes = [
        f"WITH claimed AS ({_KEYS})",
        "locked AS (UPDATE customers SET"
        " attributes = CASE WHEN :has_attributes THEN CAST(CAST(attributes AS jsonb)"
        " || CAST(CAST(:attributes AS text) AS jsonb) AS json) ELSE attributes END,"
        " updated_at = CASE WHEN :has_attributes THEN CAST(:now AS timestamptz)"
        " ELSE updated_at END"
        # IS NOT DISTINCT FROM (tenant_id is never NULL) keeps the tenant index out of the
        # plan: a generic plan made on an empty table chose it and would read every customer of
        # the tenant per call as the table grew. The primary key finds the row.
        " WHERE id = :customer_id AND tenant_id IS NOT DISTINCT FROM :tenant AND status = 'active'"
        " RETURNING CAST(attributes AS text) AS attributes)",
        # Each claim probes the unique key (LATERAL, kept a subquery by OFFSET 0, as in the first
        # look) and the rows are updated among the customer's own: written as a join with the
        # claims, PostgreSQL planned it on an unanalysed table as a scan of the tenant's every
        # entry of the unique key (tests/test_resolve_plans.py).
        "upgraded AS (UPDATE identities SET verified = true WHERE id = ANY(ARRAY("
        "SELECT p.id FROM claimed k CROSS JOIN LATERAL"
        " (SELECT id FROM identities WHERE tenant_id = :tenant AND kind = k.kind"
        " AND scope = k.scope AND value = k.value OFFSET 0) p)) AND customer_id = :customer_id"
        f" AND {guard})",
        *(_insert_cte(f"ins_{t.name}", t, guard) for t in tables),
    ]
    return raw_sql.positional(",\n".join(ctes) + "\nSELECT attributes FROM locked")


class PostgresResolveStatements:
    """Each statement straight on asyncpg (`loopkit.raw_sql`), in the unit of work's connection:
    SQLAlchemy's execute path cost as much CPU per resolve as the rest of its Python work."""

    async def first_look(
        self, session: AsyncSession, tenant_id: str, keys: list[IdentityKey], creation: Rows
    ) -> dict[str, Holder]:
        tables, params = _inserts(creation)
        params.update(_keys_params(keys), tenant=tenant_id)
        statement = _first_look_statement(tables)
        rows = await raw_sql.fetch(session, statement.sql, *statement.args(params))
        holders: dict[str, Holder] = {}
        identities: list[tuple[str, HeldIdentity]] = []
        merged: list[tuple[str, str]] = []
        for tag, customer_id, a, b, v, verified, at, attributes in rows:
            if tag == "c":
                holders[customer_id] = Holder(customer_id, a, _utc(at), json.loads(attributes))
            elif tag == "i":
                identities.append((customer_id, _held(a, b, v, verified, at)))
            else:
                merged.append((a, customer_id))
        for customer_id, held in identities:
            holders[customer_id].identities[held.key] = held
        for holder_id, merged_id in merged:
            holders[holder_id].merged_ids.append(merged_id)
        return holders

    async def extend(
        self,
        session: AsyncSession,
        tenant_id: str,
        customer_id: str,
        *,
        upgrade: list[IdentityKey],
        attributes: dict[str, Any],
        now: datetime,
        rows: Rows,
    ) -> dict[str, Any] | None:
        tables, params = _inserts(rows)
        params.update(
            _keys_params(upgrade),
            tenant=tenant_id,
            customer_id=customer_id,
            has_attributes=bool(attributes),
            attributes=json.dumps(attributes),
            now=now,
        )
        statement = _extend_statement(tables)
        found = await raw_sql.fetch(session, statement.sql, *statement.args(params))
        return dict(json.loads(found[0][0])) if found else None


# --- SQLite: the same steps as local statements (writers are serialised) ------------------------


class SqliteResolveStatements:
    async def first_look(
        self, session: AsyncSession, tenant_id: str, keys: list[IdentityKey], creation: Rows
    ) -> dict[str, Holder]:
        ids = select(IDENTITIES.c.customer_id).where(
            IDENTITIES.c.tenant_id == tenant_id,
            tuple_(IDENTITIES.c.kind, IDENTITIES.c.scope, IDENTITIES.c.value).in_(
                [(str(k.kind), k.scope, k.value) for k in keys]
            ),
        )
        found = sorted(set((await session.execute(ids)).scalars()))
        if not found:
            for table, rows in creation:
                if rows:
                    await session.execute(insert(table), rows)
            return {}
        holders = {
            r.id: Holder(r.id, r.status, _utc(r.created_at), dict(r.attributes))
            for r in await session.execute(select(CUSTOMERS).where(CUSTOMERS.c.id.in_(found)))
        }
        for r in await session.execute(
            select(IDENTITIES).where(IDENTITIES.c.customer_id.in_(found))
        ):
            held = _held(r.kind, r.scope, r.value, r.verified, r.expires_at)
            holders[r.customer_id].identities[held.key] = held
        for holder in holders.values():
            frontier = [holder.customer_id]
            for _ in range(MAX_CHAIN):
                stmt = select(CUSTOMERS.c.id).where(
                    CUSTOMERS.c.merged_into.in_(frontier), CUSTOMERS.c.status != ACTIVE
                )
                frontier = list((await session.execute(stmt)).scalars())
                if not frontier:
                    break
                holder.merged_ids.extend(frontier)
        return holders

    async def extend(
        self,
        session: AsyncSession,
        tenant_id: str,
        customer_id: str,
        *,
        upgrade: list[IdentityKey],
        attributes: dict[str, Any],
        now: datetime,
        rows: Rows,
    ) -> dict[str, Any] | None:
        stmt = select(CUSTOMERS.c.attributes).where(
            CUSTOMERS.c.id == customer_id,
            CUSTOMERS.c.tenant_id == tenant_id,
            CUSTOMERS.c.status == ACTIVE,
        )
        current = (await session.execute(stmt)).scalar_one_or_none()
        if current is None:
            return None
        merged = {**current, **attributes}
        if attributes:
            await session.execute(
                update(CUSTOMERS)
                .where(CUSTOMERS.c.id == customer_id)
                .values(attributes=merged, updated_at=now)
            )
        if upgrade:
            await session.execute(
                update(IDENTITIES)
                .where(
                    IDENTITIES.c.customer_id == customer_id,
                    tuple_(IDENTITIES.c.kind, IDENTITIES.c.scope, IDENTITIES.c.value).in_(
                        [(str(k.kind), k.scope, k.value) for k in upgrade]
                    ),
                )
                .values(verified=True)
            )
        for table, table_rows in rows:
            if table_rows:
                await session.execute(insert(table), table_rows)
        return dict(merged)
