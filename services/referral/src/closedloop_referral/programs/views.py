"""What the programs concept hands to transports: plain values, never rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ProgramView:
    id: str
    tenant_id: str
    name: str
    referrer_kind: str
    referrer_points: int
    referrer_coupon: str
    referrer_cash_minor: int
    trigger: str
    min_order_minor: int
    currency: str
    newcomer_kind: str
    newcomer_points: int
    newcomer_coupon: str
    newcomer_cash_minor: int
    cap_per_period: int
    cap_period_days: int
    levels: int
    level2_percent: int
    hold_seconds: int
    attribution_window_seconds: int
    channel_id: str
    campaign_id: str
    landing_url: str
    starts_at: datetime | None
    ends_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class CodeResult:
    code: str
    url: str
    created: bool


@dataclass(frozen=True)
class SharedLink:
    share_id: str
    code: str
    url: str


@dataclass(frozen=True)
class VisitResult:
    program_active: bool
    redirect_url: str
