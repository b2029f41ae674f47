"""What touch use cases hand to transports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class TouchView:
    id: str
    tenant_id: str
    channel_id: str | None
    campaign_id: str | None
    channel_kind: str
    kind: str
    customer_id: str | None
    expired: bool
    referrer_customer_id: str | None
    referral_code: str | None
    parameters: dict[str, str]
    occurred_at: datetime
