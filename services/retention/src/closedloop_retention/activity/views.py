"""What the activity concept hands to transports: plain values, never rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ActivityView:
    customer_id: str
    first_seen_at: datetime
    last_seen_at: datetime
    order_count: int
    revenue_minor: int
    first_order_at: datetime | None
    last_order_at: datetime | None
    last_interaction_at: datetime | None
    referrals_made: int
    unsubscribed: bool
    deleted_rep: bool
    consent: bool
    channel_id: str
    channel_kind: str
    owner_rep_id: str
    stage: str


@dataclass(frozen=True)
class CustomerActivity:
    activity: ActivityView
    tags: list[str]
    purchase_cycle_days: float


@dataclass(frozen=True)
class StageChangeView:
    from_stage: str
    to_stage: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class Lifecycle:
    stage: str
    reason: str
    history: list[StageChangeView]


@dataclass(frozen=True)
class ValueView:
    customer_id: str
    rfm_r: int
    rfm_f: int
    rfm_m: int
    rfm_score: int
    top_customer: bool
    revenue_minor: int
    order_count: int
    churn_risk: float
