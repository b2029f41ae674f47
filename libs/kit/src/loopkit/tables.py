"""The tables every service has beside its own: the outbox and the consumers' inbox."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)


@dataclass(frozen=True)
class KitTables:
    outbox: Table
    inbox: Table


def kit_tables(metadata: MetaData) -> KitTables:
    """Define the outbox and inbox in a service's own metadata (each service owns its database)."""
    outbox = Table(
        "outbox",
        metadata,
        # ULID of the event: time-ordered, and the Nats-Msg-Id JetStream de-duplicates on.
        Column("id", String(26), primary_key=True),
        Column("subject", String(255), nullable=False),
        Column("data", LargeBinary, nullable=False),
        Column("headers", JSON, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Column("attempts", Integer, nullable=False, default=0),
        Index("ix_outbox_unpublished", "published_at", "id"),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("subject", String(255), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False),
    )
    return KitTables(outbox=outbox, inbox=inbox)
