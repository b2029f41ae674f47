"""What the win-back concept hands to transports and workers: plain values, never rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class WinBackView:
    id: str
    tenant_id: str
    customer_id: str
    coupon_id: str
    value_minor: int
    valid_until: datetime
    owner_rep_id: str
    attempt: int
    status: str
    reason: str
    created_at: datetime
    sent_at: datetime | None
    message_id: str
    delivery: str
    delivery_errcode: int


@dataclass(frozen=True)
class DueOffer:
    """An offer due for sending, with where it goes and whether WeChat's 48-hour
    customer-service window is open (the customer's last interaction)."""

    offer: WinBackView
    contact_kind: str
    contact_scope: str
    contact_value: str
    last_interaction_at: datetime | None
