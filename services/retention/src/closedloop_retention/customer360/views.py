"""What the customer 360 hands to transports: plain values, never rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from closedloop_retention.activity.views import CustomerActivity, ValueView
from closedloop_retention.loyalty.views import Account
from loopkit.customers import KnownCustomer


@dataclass(frozen=True)
class LeadFacts:
    """What lead.captured says about a lead (its first attribution)."""

    lead_id: str
    campaign_id: str
    channel_id: str
    channel_kind: str
    referrer_id: str = ""
    referral_code: str = ""


@dataclass(frozen=True)
class Entry:
    """One timeline entry: the event type, who published it, a summary without personal data."""

    key: str
    kind: str
    service: str
    at: datetime
    summary: str
    ref: str = ""


@dataclass(frozen=True)
class LeadView:
    lead_id: str
    campaign_id: str
    channel_id: str
    channel_kind: str
    captured_at: datetime | None
    referrer_customer_id: str
    referral_code: str
    rep_id: str
    assigned_at: datetime | None


@dataclass(frozen=True)
class FollowUpView:
    follow_up_id: str
    lead_id: str
    rep_id: str
    kind: str
    inbound: bool
    at: datetime


@dataclass(frozen=True)
class OrderView:
    order_id: str
    rep_id: str
    lead_id: str
    currency: str
    amount_minor: int
    refunded_minor: int
    fully_refunded: bool
    paid_at: datetime


@dataclass(frozen=True)
class RewardView:
    reward_id: str
    referral_id: str
    kind: str
    points: int
    coupon_template_id: str
    level: int
    granted_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class ReferralPosition:
    codes: list[str] = field(default_factory=list)
    referred_by: str = ""
    referred_by_code: str = ""
    referred_at: datetime | None = None
    converted: bool = False
    referred: list[str] = field(default_factory=list)
    referrals_converted: int = 0
    rewards: list[RewardView] = field(default_factory=list)


@dataclass(frozen=True)
class TimelineEntry:
    kind: str
    at: datetime
    service: str
    summary: str


@dataclass(frozen=True)
class Customer360:
    """Everything retention knows of one customer, under the id identity keeps for them."""

    who: KnownCustomer
    # None when retention has seen no event of theirs yet (no activity row)
    activity: CustomerActivity | None
    stage_reason: str
    value: ValueView | None
    account: Account
    # activity's owner (lead.assigned / ownership.started), else the rep of the latest assignment
    owner_rep_id: str
    leads: list[LeadView]
    follow_ups: list[FollowUpView]
    orders: list[OrderView]
    referral: ReferralPosition
    timeline: list[TimelineEntry]
