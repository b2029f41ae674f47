"""What the loyalty concept hands to transports: plain values, never rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from closedloop_retention.activity.rules import Tier


@dataclass(frozen=True)
class LedgerEntryView:
    id: str
    points: int
    source: str
    source_ref: str
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class CouponView:
    id: str
    customer_id: str
    template_id: str
    value_minor: int
    reason: str
    issued_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class Posted:
    entry: LedgerEntryView
    balance: int
    created: bool


@dataclass(frozen=True)
class Account:
    customer_id: str
    balance: int
    lifetime_points: int
    tier: Tier | None
    ledger: list[LedgerEntryView]
    coupons: list[CouponView]


@dataclass(frozen=True)
class RewardGrant:
    """A referral reward granted: points to credit, or a coupon template to issue."""

    reward_id: str
    points: int
    coupon_template_id: str
    level: int
