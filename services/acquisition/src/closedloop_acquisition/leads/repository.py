"""Every query on leads, their aliases (leads folded by a merge) and the idempotency keys of
submissions; the only writer of those tables."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    bindparam,
    delete,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop_acquisition.catalog.specs import is_id
from closedloop_acquisition.models import LeadAliasRow, LeadRequestRow, LeadRow
from loopkit import raw_sql
from loopkit.customer_rows import (
    forget_in_set_aside,
    record_moves,
    repoint_customer,
    take_moves,
)
from loopkit.events import Outbox, note_events_written

LEADS: Table = LeadRow.__table__  # type: ignore[assignment]
# The referrer inside a lead's attribution JSON, as the move log names it: no column of that
# name exists, so the kit's give_back_customer must never see these moves (`give_back_referrer`
# takes them out of the log first).
REFERRER_MOVE = "attribution.referrer_customer_id"


async def add(session: AsyncSession, row: LeadRow | LeadRequestRow) -> None:
    session.add(row)
    await session.flush()


async def add_with_event(
    session: AsyncSession, outbox: Outbox, values: dict[str, Any], event: Envelope
) -> LeadRow:
    """Writes a new lead and its event together (one round trip on PostgreSQL); the row
    returned is a copy, not in the session."""
    if session.get_bind().dialect.name != "postgresql":
        await outbox.add_with(session, LEADS, values, event)
        return LeadRow(**values)
    row = outbox.row(event)
    statement = _lead_with_event(outbox.tables.outbox, tuple(values), tuple(row))
    params = {f"lead_{k}": v for k, v in values.items()}
    params.update({f"event_{k}": v for k, v in row.items()})
    # Straight on the session's asyncpg connection (loopkit.raw_sql), as SQL compiled once:
    # CPU per lead ~0.63 -> ~0.45 ms in process (SQLAlchemy's execute was the difference:
    # parameter processing, the compiled cache's lookups, the result). A duplicate key is still
    # SQLAlchemy's IntegrityError, so the lost race is retried as from `session.execute`.
    args = [json.dumps(v) if isinstance(v, dict) else v for v in statement.args(params)]
    await raw_sql.fetch(session, statement.sql, *args)
    note_events_written(session)
    return LeadRow(**values)


@functools.cache
def _lead_with_event(
    outbox: Table, columns: tuple[str, ...], event_columns: tuple[str, ...]
) -> raw_sql.Positional:
    """The lead (RETURNING its id) and its outbox row in one data-modifying CTE, compiled once
    per shape with bound parameters. Built per call with the values inside (`Outbox.add_with`),
    SQLAlchemy computed a cache key over every value on each execution: a third of
    acquisition's CPU per lead."""
    lead = {c: bindparam(f"lead_{c}", type_=LEADS.c[c].type) for c in columns}
    written = insert(LEADS).values(lead).returning(LEADS.c.id).cte("written")
    event = select(
        *[bindparam(f"event_{c}", type_=outbox.c[c].type).label(c) for c in event_columns]
    ).select_from(written)
    return raw_sql.compiled(insert(outbox).from_select(list(event_columns), event).add_cte(written))


async def lead(session: AsyncSession, tenant_id: str, lead_id: str) -> LeadRow | None:
    """The lead, or the one it was folded into by a merge."""
    if not is_id(lead_id):
        return None
    row = await session.get(LeadRow, lead_id)
    if row is None:
        alias = await session.get(LeadAliasRow, lead_id)
        row = await session.get(LeadRow, alias.survivor_lead_id) if alias is not None else None
    return row if row is not None and row.tenant_id == tenant_id else None


async def request(session: AsyncSession, tenant_id: str, request_id: str) -> LeadRequestRow | None:
    """What the first submission with this idempotency key answered."""
    return await session.get(LeadRequestRow, (tenant_id, request_id))


async def lead_of(
    session: AsyncSession, tenant_id: str, customer_id: str, campaign_id: str
) -> LeadRow | None:
    """The customer's lead in the campaign, row-locked (PostgreSQL) until the transaction ends:
    concurrent re-submissions queue instead of losing each other's update."""
    result = await session.execute(
        select(LeadRow)
        .where(
            LeadRow.tenant_id == tenant_id,
            LeadRow.customer_id == customer_id,
            LeadRow.campaign_id == campaign_id,
        )
        .with_for_update()
    )
    return result.scalar_one_or_none()


async def leads_of_customers(
    session: AsyncSession, tenant_id: str, customer_ids: Sequence[str]
) -> list[LeadRow]:
    result = await session.execute(
        select(LeadRow)
        .where(LeadRow.tenant_id == tenant_id, LeadRow.customer_id.in_(customer_ids))
        .order_by(LeadRow.id)
        .with_for_update()
    )
    return list(result.scalars())


async def fold(
    session: AsyncSession, tenant_id: str, folded_id: str, survivor_id: str, now: datetime
) -> None:
    """Deletes the folded lead; whoever kept its id (conversion did) still finds the lead, and
    ids that pointed at the folded one now point at the survivor."""
    await session.execute(delete(LeadRow).where(LeadRow.id == folded_id))
    await session.execute(
        update(LeadAliasRow)
        .where(LeadAliasRow.survivor_lead_id == folded_id)
        .values(survivor_lead_id=survivor_id)
    )
    session.add(
        LeadAliasRow(
            lead_id=folded_id, tenant_id=tenant_id, survivor_lead_id=survivor_id, created_at=now
        )
    )


async def forget(session: AsyncSession, tenant_id: str, customer_ids: Sequence[str]) -> None:
    """Erases the form values of these customers' leads (the rows stay for the counts)."""
    await session.execute(
        update(LeadRow)
        .where(LeadRow.tenant_id == tenant_id, LeadRow.customer_id.in_(customer_ids))
        .values(values={}, forgotten=True)
    )


# The referrer inside a lead's attribution, spelled as the index `ix_leads_tenant_referrer`
# (migration 0009) is: a literal key (SQLAlchemy's `attribution[key]` binds the key as a
# parameter, which no expression index matches).
_REFERRER_OF: dict[str, ColumnElement[Any]] = {
    "postgresql": literal_column("(leads.attribution ->> 'referrer_customer_id')"),
    "sqlite": literal_column("json_extract(leads.attribution, '$.referrer_customer_id')"),
}


def referrer_of(session: AsyncSession) -> ColumnElement[Any]:
    return _REFERRER_OF[session.get_bind().dialect.name]


async def _referred_by(
    session: AsyncSession, tenant_id: str, customer_ids: Sequence[str]
) -> list[LeadRow]:
    """The leads whose attribution names one of these customers as the referrer (locked)."""
    referrer = referrer_of(session)
    found = await session.execute(
        select(LeadRow)
        .where(LeadRow.tenant_id == tenant_id, referrer.in_(list(customer_ids)))
        .order_by(LeadRow.id)
        .with_for_update()
    )
    return list(found.scalars())


async def forget_referrer(
    session: AsyncSession, tenant_id: str, customer_ids: Sequence[str]
) -> None:
    """Other customers' leads no longer name these customers as their referrer: the lead, its
    channel and its referral code stay, not who made the referral. So do the copies of leads a
    merge folded away (the move log's), which an unmerge would insert again."""
    for lead in await _referred_by(session, tenant_id, customer_ids):
        lead.attribution = {**lead.attribution, "referrer_customer_id": ""}
    await session.flush()
    await forget_in_set_aside(
        session,
        LeadRow,
        ("attribution", "referrer_customer_id"),
        tenant_id=tenant_id,
        customer_ids=customer_ids,
    )


async def repoint(
    session: AsyncSession, tenant_id: str, from_id: str, to_id: str, merge_id: str = ""
) -> None:
    columns = [(LeadRow, "customer_id")]
    await repoint_customer(
        session, columns, tenant_id=tenant_id, from_id=from_id, to_id=to_id, merge_id=merge_id
    )


async def repoint_referrer(
    session: AsyncSession, tenant_id: str, from_id: str, to_id: str, merge_id: str = ""
) -> None:
    """Leads `from_id` referred name `to_id` (the survivor) as their referrer, each move logged
    (`REFERRER_MOVE`) so an unmerge gives the referral back."""
    moved = await _referred_by(session, tenant_id, [from_id])
    for lead in moved:
        lead.attribution = {**lead.attribution, "referrer_customer_id": to_id}
    await session.flush()
    await record_moves(
        session,
        LeadRow,
        REFERRER_MOVE,
        [(lead.id,) for lead in moved],
        tenant_id=tenant_id,
        merge_id=merge_id,
        from_id=from_id,
        to_id=to_id,
    )


async def give_back_referrer(
    session: AsyncSession, tenant_id: str, merge_id: str, restored_id: str, survivor_id: str
) -> None:
    """The leads the merge `merge_id` moved to the survivor as referrer name `restored_id` again,
    while the survivor (or whoever holds its rows now) is still their referrer."""
    moves = await take_moves(
        session, LeadRow, REFERRER_MOVE, tenant_id=tenant_id, merge_id=merge_id
    )
    for move in moves:
        lead = await session.get(LeadRow, str(move.row_key[0]), with_for_update=True)
        if lead is None or lead.tenant_id != tenant_id:
            continue  # folded into another lead since (its copy is the move log's)
        if (lead.attribution or {}).get("referrer_customer_id") in (move.to_id, survivor_id):
            lead.attribution = {**lead.attribution, "referrer_customer_id": restored_id}
    await session.flush()


async def unfold(session: AsyncSession, folded_id: str) -> None:
    """The folded lead is a lead of its own again (an unmerge inserted it back)."""
    await session.execute(delete(LeadAliasRow).where(LeadAliasRow.lead_id == folded_id))
