"""The tables every service has beside its own: the outbox and the consumers' inbox; and the
move log of merged customers for the services that follow identity's merges."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    JSON,
    BigInteger,
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


CUSTOMER_MOVES = "customer_moves"


def customer_moves_table(metadata: MetaData) -> Table:
    """The move log of a service that follows identity's merges (`loopkit.customer_rows`).

    One row per row a merge re-pointed (`row_key`: the row's primary-key values other than
    `tenant_id` and the moved column, as a JSON list) or set aside (`row_data`: the whole row,
    deleted because the survivor already had one like it), so `customer.unmerged` can give exactly
    those rows back. A merge's rows go once it is undone.
    """
    return Table(
        CUSTOMER_MOVES,
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        Column("tenant_id", String(64), nullable=False),
        Column("merge_id", String(64), nullable=False),
        Column("table_name", String(64), nullable=False),
        Column("column_name", String(64), nullable=False),
        Column("row_key", JSON, nullable=True),
        Column("row_data", JSON, nullable=True),
        Column("from_id", String(26), nullable=False),
        Column("to_id", String(26), nullable=False),
        Index("ix_customer_moves_merge", "tenant_id", "merge_id"),
    )


CUSTOMER_ALIASES = "customer_aliases"


def customer_aliases_table(metadata: MetaData) -> Table:
    """Merged-away and forgotten customer ids and who holds them now (`loopkit.customer_aliases`):
    a late event naming one is counted for the survivor, or for nobody (`survivor_id` empty)."""
    return Table(
        CUSTOMER_ALIASES,
        metadata,
        Column("tenant_id", String(64), primary_key=True),
        Column("customer_id", String(26), primary_key=True),
        Column("survivor_id", String(26), nullable=False),
        Column("merge_id", String(64), nullable=False),
    )
