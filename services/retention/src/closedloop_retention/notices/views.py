"""What the notices concept hands to workers: plain values, never rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class NoticeView:
    id: str
    tenant_id: str
    customer_id: str
    kind: str
    content: str
    idempotency_key: str | None  # None once finished and older than the key retention
    status: str
    reason: str
    message_id: str
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class NoticeToSend:
    """A claimed notice and where it goes (the customer's contact as activity knows it now)."""

    notice: NoticeView
    contact_kind: str
    contact_scope: str
    contact_value: str
