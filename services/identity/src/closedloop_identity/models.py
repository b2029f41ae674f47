"""The identity service's tables (its own database; no other service reads them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from loopkit.db import new_metadata
from loopkit.tables import kit_tables


class Base(DeclarativeBase):
    metadata = new_metadata()


kit = kit_tables(Base.metadata)


class CustomerRow(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    # active | merged | forgotten
    status: Mapped[str] = mapped_column(String(16))
    merged_into: Mapped[str | None] = mapped_column(String(26), index=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IdentityRow(Base):
    __tablename__ = "identities"
    # The rule of the whole platform: one (tenant, kind, scope, value) names one live customer.
    __table_args__ = (UniqueConstraint("tenant_id", "kind", "scope", "value"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(256))
    value: Mapped[str] = mapped_column(String(256))
    verified: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MergeRow(Base):
    __tablename__ = "merges"
    __table_args__ = (Index("ix_merges_tenant_merged", "tenant_id", "merged_id"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    survivor_id: Mapped[str] = mapped_column(String(26), index=True)
    merged_id: Mapped[str] = mapped_column(String(26))
    reason: Mapped[str] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(200))
    trigger: Mapped[str | None] = mapped_column(String(600))
    # Identity row ids that came with the merged customer: what an unmerge gives back.
    moved_identity_ids: Mapped[list[str]] = mapped_column(JSON)
    # Attributes the survivor gained from the merged customer (keys it did not have), with their
    # values then: what an unmerge takes back. None on merges recorded before it was kept.
    taken_attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    undone_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_tenant_customer", "tenant_id", "customer_id", "at"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(26))
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    other_customer_id: Mapped[str | None] = mapped_column(String(26))
    identity_kind: Mapped[str | None] = mapped_column(String(32))
    identity_scope: Mapped[str | None] = mapped_column(String(256))
    # Personal data: blanked when the customer is forgotten.
    identity_value: Mapped[str | None] = mapped_column(String(256))
    detail: Mapped[str] = mapped_column(String(1000))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MergePolicyRow(Base):
    __tablename__ = "merge_policies"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    merge_kinds: Mapped[list[str]] = mapped_column(JSON)
    phone_requires_verification: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CustomerKeyRow(Base):
    """A customer's data key (loopkit.pii): seals their personal values in every event of the
    platform. Destroyed (key NULL) when the customer is forgotten, which makes every copy of
    those values in streams, replays and dead letters unreadable."""

    __tablename__ = "customer_keys"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    key: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
