"""What the rewards concept hands to transports: plain values, never rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class RewardView:
    id: str
    referral_id: str
    beneficiary_id: str
    level: int
    kind: str
    points: int
    coupon_template_id: str
    cash_minor: int
    currency: str
    status: str
    reason: str
    hold_until: datetime
    granted_at: datetime | None
    created_at: datetime
