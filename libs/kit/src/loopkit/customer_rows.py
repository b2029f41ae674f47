"""Rows that name a customer, kept right when identity merges customers and when it undoes a
merge. Transport-free, so a service's domain and repositories may use it (the subscription wiring
is in customer_events).

A merge (`customer.merged`, with its `merge_id`) re-points the merged customer's rows to the
survivor with `repoint_customer(..., merge_id=...)`, which writes each moved row's key into the
service's move log (`loopkit.tables.customer_moves_table`). A row the survivor already had an
equivalent of (a uniqueness rule involving the customer) is resolved by the service itself; if it
deletes the merged customer's row, it first keeps a copy with `set_aside`. An unmerge
(`customer.unmerged` naming that merge) calls `give_back_customer`: exactly the logged rows go
back to the restored customer and the set-aside rows come back; rows created for the survivor
after the merge stay with the survivor. What a service combined on the survivor (summed
counters, say) it undoes itself with what `give_back_customer` returns.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    LargeBinary,
    MetaData,
    Table,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from loopkit.tables import CUSTOMER_MOVES

Model = Table | type[Any]


def _table(model: Model) -> Table:
    return model if isinstance(model, Table) else model.__table__


def _moves(metadata: MetaData) -> Table:
    moves = metadata.tables.get(CUSTOMER_MOVES)
    if moves is None:
        raise RuntimeError(
            "this service keeps no move log: add loopkit.tables.customer_moves_table(metadata) "
            "to its models and a migration creating it"
        )
    return moves


def _key_columns(table: Table, column: str) -> list[Column[Any]]:
    """The primary-key columns that name the row apart from the tenant and the customer."""
    return [c for c in table.primary_key.columns if c.name not in ("tenant_id", column)]


def _encode(table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in table.columns:
        if col.name not in values:
            continue
        value = values[col.name]
        if isinstance(value, datetime | date):
            value = value.isoformat()
        elif isinstance(value, bytes):
            value = base64.b64encode(value).decode("ascii")
        out[col.name] = value
    return out


def _decode_value(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(kind, DateTime):
        when = datetime.fromisoformat(value)
        if kind.timezone and when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # SQLite hands UTC back without its zone
        return when
    if isinstance(kind, Date):
        return date.fromisoformat(value)
    if isinstance(kind, LargeBinary):
        return base64.b64decode(value)
    return value


def _decode(table: Table, data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: _decode_value(table.columns[name].type, value)
        for name, value in data.items()
        if name in table.columns  # a column dropped since the merge is left out
    }


def row_values(row: Any) -> dict[str, Any]:
    """Every column of an ORM row (or a mapping) by name, for `set_aside`."""
    if isinstance(row, Mapping):
        return dict(row)
    return {col.name: getattr(row, col.key) for col in row.__table__.columns}


async def record_moves(
    session: AsyncSession,
    model: Model,
    column: str,
    keys: Iterable[Sequence[Any]],
    *,
    tenant_id: str,
    merge_id: str,
    from_id: str,
    to_id: str,
) -> None:
    """Log rows a service re-pointed itself (keys: the `_key_columns` values of each row)."""
    table = _table(model)
    rows = [
        {
            "tenant_id": tenant_id,
            "merge_id": merge_id,
            "table_name": table.name,
            "column_name": column,
            "row_key": list(key),
            "row_data": None,
            "from_id": from_id,
            "to_id": to_id,
        }
        for key in keys
    ]
    if rows and merge_id:
        await session.execute(insert(_moves(table.metadata)), rows)


async def set_aside(
    session: AsyncSession,
    model: Model,
    column: str,
    rows: Iterable[Any],
    *,
    tenant_id: str,
    merge_id: str,
    from_id: str,
    to_id: str,
) -> None:
    """Keep a copy of rows the service is about to delete on a merge (the other side had their
    like), so the unmerge inserts them again: a row of `from_id` for the restored customer, a
    row of `to_id` for whoever holds the survivor's rows then. The caller deletes them."""
    table = _table(model)
    copies = [
        {
            "tenant_id": tenant_id,
            "merge_id": merge_id,
            "table_name": table.name,
            "column_name": column,
            "row_key": None,
            "row_data": _encode(table, row_values(row)),
            "from_id": from_id,
            "to_id": to_id,
        }
        for row in rows
    ]
    if copies and merge_id:
        await session.execute(insert(_moves(table.metadata)), copies)


async def repoint_customer(
    session: AsyncSession,
    columns: Iterable[tuple[Model, str]],
    *,
    tenant_id: str,
    from_id: str,
    to_id: str,
    merge_id: str = "",
) -> int:
    """Move every (table or ORM class, column) reference of `from_id` to `to_id` in the tenant.

    With a `merge_id` (customer.merged carries one) each moved row is logged, so an unmerge gives
    exactly these rows back (`give_back_customer`). Tables with a uniqueness rule involving the
    customer (one lead per customer and campaign, say) must resolve the collision themselves
    before calling this (`set_aside` what they delete).
    """
    moved = 0
    for model, column in columns:
        table = _table(model)
        stmt = (
            update(table)
            .where(table.c.tenant_id == tenant_id, table.c[column] == from_id)
            .values({column: to_id})
        )
        if not merge_id:
            result = await session.execute(stmt)
            moved += int(getattr(result, "rowcount", 0) or 0)
            continue
        keys = _key_columns(table, column)
        returned = (await session.execute(stmt.returning(*keys, table.c[column]))).all()
        moved += len(returned)
        await record_moves(
            session,
            table,
            column,
            [tuple(row)[: len(keys)] for row in returned],
            tenant_id=tenant_id,
            merge_id=merge_id,
            from_id=from_id,
            to_id=to_id,
        )
    return moved


async def repoint_unique(
    session: AsyncSession,
    model: Model,
    column: str,
    unique: Sequence[str],
    *,
    tenant_id: str,
    from_id: str,
    to_id: str,
    merge_id: str = "",
) -> int:
    """`repoint_customer` for a table with a uniqueness rule on (tenant, customer, *unique): a
    row of `from_id` whose `unique` values `to_id` already has is set aside and deleted (the
    survivor's row stands for both; the unmerge inserts it again), the others move. Returns how
    many moved."""
    table = _table(model)
    theirs = table.alias("survivor_rows")
    clash = (
        select(theirs.c[column])
        .where(
            theirs.c.tenant_id == tenant_id,
            theirs.c[column] == to_id,
            *[theirs.c[name] == table.c[name] for name in unique],
        )
        .exists()
    )
    mine = [table.c.tenant_id == tenant_id, table.c[column] == from_id]
    dropped = (await session.execute(select(table).where(*mine, clash))).mappings().all()
    if dropped:
        await set_aside(
            session,
            table,
            column,
            dropped,
            tenant_id=tenant_id,
            merge_id=merge_id,
            from_id=from_id,
            to_id=to_id,
        )
        keys = [c.name for c in table.primary_key.columns]
        for row in dropped:
            await session.execute(delete(table).where(*[table.c[k] == row[k] for k in keys]))
    return await repoint_customer(
        session,
        [(table, column)],
        tenant_id=tenant_id,
        from_id=from_id,
        to_id=to_id,
        merge_id=merge_id,
    )


@dataclass
class GivenBack:
    """What `give_back_customer` did: rows moved back per table, and the set-aside rows it
    inserted again per table (as inserted, the customer column naming the restored customer)."""

    moved: dict[str, int] = field(default_factory=dict)
    restored: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def anything(self) -> bool:
        return bool(self.moved or self.restored)


@dataclass(frozen=True)
class Move:
    """One logged move of a merge: the row's key (see `record_moves`), from whom to whom."""

    row_key: tuple[Any, ...]
    from_id: str
    to_id: str


async def take_moves(
    session: AsyncSession,
    model: Model,
    column: str,
    *,
    tenant_id: str,
    merge_id: str,
    from_id: str | None = None,
) -> list[Move]:
    """Take a merge's logged moves of one table and column out of the log (optionally only those
    from `from_id`), for a service that gives them back its own way (a swap around a
    uniqueness rule, say) before `give_back_customer` does the rest."""
    table = _table(model)
    moves = _moves(table.metadata)
    where = [
        moves.c.tenant_id == tenant_id,
        moves.c.merge_id == merge_id,
        moves.c.table_name == table.name,
        moves.c.column_name == column,
        moves.c.row_key.is_not(None),
    ]
    if from_id is not None:
        where.append(moves.c.from_id == from_id)
    rows = (await session.execute(select(moves).where(*where).order_by(moves.c.id))).all()
    if rows:
        await session.execute(delete(moves).where(moves.c.id.in_([r.id for r in rows])))
    return [Move(tuple(r.row_key or ()), r.from_id, r.to_id) for r in rows]


async def give_back_customer(
    session: AsyncSession,
    metadata: MetaData,
    *,
    tenant_id: str,
    merge_id: str,
    restored_id: str,
    survivor_id: str,
) -> GivenBack:
    """Undo the logged moves of `merge_id`: its rows name `restored_id` again, wherever later
    merges took them (`survivor_id`: who holds them now), and its set-aside rows come back.

    Rows created for the survivor after the merge were never logged and stay. The merge's log
    goes, so giving back twice changes nothing. A merge logged before the service kept a log
    gives nothing back.
    """
    moves = _moves(metadata)
    records = (
        await session.execute(
            select(moves)
            .where(moves.c.tenant_id == tenant_id, moves.c.merge_id == merge_id)
            .order_by(moves.c.id)
        )
    ).all()
    done = GivenBack()
    for rec in records:
        table = metadata.tables.get(rec.table_name)
        if table is None:
            continue  # a table dropped since the merge
        column = rec.column_name
        if rec.row_data is not None:
            values = _decode(table, rec.row_data)
            values[column] = restored_id if values.get(column) == rec.from_id else survivor_id
            await session.execute(insert(table).values(values))
            done.restored.setdefault(table.name, []).append(values)
            continue
        keys = _key_columns(table, column)
        conditions = [table.c.tenant_id == tenant_id]
        conditions += [col == value for col, value in zip(keys, rec.row_key or [], strict=True)]
        # Only while the merge's survivor (or whoever holds its rows now) has the row: one given
        # back already by undoing another merge stays where it is.
        conditions.append(table.c[column].in_(list(dict.fromkeys([rec.to_id, survivor_id]))))
        result = await session.execute(
            update(table).where(*conditions).values({column: restored_id})
        )
        count = int(getattr(result, "rowcount", 0) or 0)
        if count:
            done.moved[table.name] = done.moved.get(table.name, 0) + count
    if records:
        await session.execute(
            delete(moves).where(moves.c.tenant_id == tenant_id, moves.c.merge_id == merge_id)
        )
    return done


async def forget_moves(
    session: AsyncSession, metadata: MetaData, *, tenant_id: str, customer_ids: Sequence[str]
) -> None:
    """On customer.forgotten: the move log's entries of these customers go (the set-aside copies
    may hold their personal data); their merges can no longer be given back."""
    moves = _moves(metadata)
    ids = list(customer_ids)
    await session.execute(
        delete(moves).where(
            moves.c.tenant_id == tenant_id, or_(moves.c.from_id.in_(ids), moves.c.to_id.in_(ids))
        )
    )


async def forget_in_set_aside(
    session: AsyncSession,
    model: Model,
    path: Sequence[str],
    *,
    tenant_id: str,
    customer_ids: Sequence[str],
    blank: Any = "",
) -> int:
    """On customer.forgotten: set-aside copies of `model`'s rows (`set_aside`) that name one of
    these customers at `path` (a column, or a JSON column and the keys inside it, e.g.
    `("attribution", "referrer_customer_id")`) name `blank` there instead, so an unmerge does
    not bring the id back. `forget_moves` drops only the copies of the forgotten customers' own
    rows; this is for copies of others' rows that name them (as a referrer, say). Returns how
    many copies changed."""
    table = _table(model)
    moves = _moves(table.metadata)
    ids = list(customer_ids)
    if not ids or not path:
        return 0
    named = moves.c.row_data[tuple(path)] if len(path) > 1 else moves.c.row_data[path[0]]
    found = (
        await session.execute(
            select(moves.c.id, moves.c.row_data).where(
                moves.c.tenant_id == tenant_id,
                moves.c.table_name == table.name,
                moves.c.row_data.is_not(None),
                named.as_string().in_(ids),
            )
        )
    ).all()
    for copy_id, data in found:
        await session.execute(
            update(moves)
            .where(moves.c.id == copy_id)
            .values(row_data=_with_value(dict(data), list(path), blank))
        )
    return len(found)


def _with_value(data: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    head, *rest = path
    if rest:
        inner = data.get(head)
        data[head] = _with_value(dict(inner) if isinstance(inner, Mapping) else {}, rest, value)
    else:
        data[head] = value
    return data
