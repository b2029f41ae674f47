"""What the customer use cases hand to transports instead of ORM rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from closedloop_identity.customers.identities import IdentityKey


def utc(at: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything here is UTC.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


@dataclass(frozen=True)
class IdentityView:
    key: IdentityKey
    verified: bool


@dataclass
class CustomerView:
    """Not frozen: the direct resolve fills in identities and attributes as it learns them."""

    tenant_id: str
    customer_id: str
    status: str
    identities: list[IdentityView]
    attributes: dict[str, Any]
    created_at: datetime
    merged_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HistoryView:
    id: str
    action: str
    actor: str
    customer_id: str
    other_customer_id: str | None
    identity: IdentityKey | None
    detail: str
    at: datetime
