"""Domain events: building envelopes and writing them to the outbox in the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf.any_pb2 import Any as AnyPb
from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Table, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1.envelope_pb2 import Envelope
from loopkit import tracing
from loopkit.bulk import insert_rows
from loopkit.ids import new_ulid
from loopkit.tables import KitTables
from loopkit.timestamps import to_timestamp

SUBJECT_ROOT = "closedloop"
M = TypeVar("M", bound=Message)


def subject_for(producer: str, event_type: str) -> str:
    """`closedloop.<producer>.<event type>`, e.g. closedloop.identity.customer.merged."""
    return f"{SUBJECT_ROOT}.{producer}.{event_type}"


def stream_for(producer: str) -> str:
    """One JetStream stream per producing service, named after it: IDENTITY, ACQUISITION, …"""
    return producer.upper()


def new_envelope(
    *,
    producer: str,
    event_type: str,
    tenant_id: str,
    customer_id: str,
    payload: Message,
    occurred_at: datetime | Timestamp | None = None,
    carrier: Mapping[str, str] | None = None,
) -> Envelope:
    """`carrier`: the trace context's headers (`tracing.current_context_headers()`), when the
    caller makes many envelopes in one context and reads it once; `occurred_at` may then be one
    Timestamp for all of them too."""
    if isinstance(occurred_at, Timestamp):
        at = occurred_at
    else:
        at = to_timestamp(occurred_at or datetime.now(UTC))
    packed = AnyPb()
    packed.Pack(payload)
    if carrier is None:
        carrier = tracing.current_context_headers()
    return Envelope(
        id=new_ulid(),
        type=event_type,
        tenant_id=tenant_id,
        customer_id=customer_id,
        occurred_at=at,
        producer=producer,
        payload=packed,
        traceparent=carrier.get("traceparent", ""),
        tracestate=carrier.get("tracestate", ""),
    )


def decode_envelope(data: bytes) -> Envelope:
    env = Envelope()
    try:
        env.ParseFromString(data)
    except DecodeError as exc:
        raise ValueError(f"not an event envelope: {exc}") from exc
    if not env.id or not env.type:
        raise ValueError("event envelope without id or type")
    return env


def unpack(env: Envelope, message_type: type[M]) -> M:
    """The typed payload; raises ValueError if the envelope holds another type."""
    msg = message_type()
    if not env.payload.Unpack(msg):
        raise ValueError(f"event {env.type} does not carry {message_type.DESCRIPTOR.full_name}")
    return msg


# Set in a session's `info` when its transaction wrote outbox rows: `loopkit.db.transact` wakes the
# relay after committing only such transactions.
WROTE_EVENTS = "loopkit.outbox.wrote"


def note_events_written(session: AsyncSession) -> None:
    """Mark the session's transaction as one that wrote outbox rows (for rows written directly)."""
    session.info[WROTE_EVENTS] = True


@dataclass
class Outbox:
    """Writes events in the same transaction as the state change that produced them."""

    tables: KitTables
    producer: str

    def envelope(
        self,
        event_type: str,
        *,
        tenant_id: str,
        customer_id: str,
        payload: Message,
        occurred_at: datetime | Timestamp | None = None,
        carrier: Mapping[str, str] | None = None,
    ) -> Envelope:
        """See `new_envelope` for `occurred_at` and `carrier`."""
        return new_envelope(
            producer=self.producer,
            event_type=event_type,
            tenant_id=tenant_id,
            customer_id=customer_id,
            payload=payload,
            occurred_at=occurred_at,
            carrier=carrier,
        )

    def row(self, envelope: Envelope, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The outbox row that carries `envelope`, for a caller that writes it in its own
        statement (then it calls `note_events_written`). `headers`: more NATS headers for the
        message (e.g. what a consumer's `Subscription.skip_header` looks for); the kit's own
        (`Nats-Msg-Id`, `Closedloop-Type`, the trace context) take precedence."""
        headers = {
            **(headers or {}),
            "Nats-Msg-Id": envelope.id,
            "Closedloop-Type": envelope.type,
        }
        if envelope.traceparent:
            headers["traceparent"] = envelope.traceparent
        if envelope.tracestate:
            headers["tracestate"] = envelope.tracestate
        return {
            "id": envelope.id,
            "subject": subject_for(self.producer, envelope.type),
            "data": envelope.SerializeToString(),
            "headers": headers,
            "created_at": datetime.now(UTC),
            "published_at": None,
            "attempts": 0,
        }

    async def add(
        self, session: AsyncSession, envelope: Envelope, headers: Mapping[str, str] | None = None
    ) -> None:
        await session.execute(insert(self.tables.outbox).values(self.row(envelope, headers)))
        note_events_written(session)

    async def add_with(
        self, session: AsyncSession, table: Table, values: dict[str, Any], envelope: Envelope
    ) -> None:
        """Writes one row of `table` and the outbox row of `envelope`: in one statement (one
        round trip, a data-modifying CTE) on PostgreSQL, in two elsewhere. Both or neither, as
        ever: they are in the caller's transaction either way."""
        outbox_row = self.row(envelope)
        if session.get_bind().dialect.name != "postgresql":
            await session.execute(insert(table).values(values))
            await session.execute(insert(self.tables.outbox).values(outbox_row))
        else:
            written = insert(table).values(values).returning(*table.primary_key.columns)
            row = written.cte("written")
            outbox = self.tables.outbox
            event = select(
                *[literal(v, type_=outbox.c[k].type).label(k) for k, v in outbox_row.items()]
            ).select_from(row)
            await session.execute(insert(outbox).from_select(list(outbox_row), event).add_cte(row))
        note_events_written(session)

    async def add_many(
        self,
        session: AsyncSession,
        envelopes: list[Envelope],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Several events in one statement (`loopkit.bulk.insert_rows`: one list per column);
        `headers` (see `row`) go on every one."""
        if envelopes:
            rows = [self.row(e, headers) for e in envelopes]
            await insert_rows(session, self.tables.outbox, rows)
            note_events_written(session)

    async def emit(
        self,
        session: AsyncSession,
        event_type: str,
        *,
        tenant_id: str,
        customer_id: str,
        payload: Message,
        headers: Mapping[str, str] | None = None,
    ) -> Envelope:
        env = self.envelope(
            event_type, tenant_id=tenant_id, customer_id=customer_id, payload=payload
        )
        await self.add(session, env, headers)
        return env
