"""What the sales concept hands to transports: plain values, never rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RepView:
    id: str
    tenant_id: str
    wecom_user_id: str
    name: str
    team: str
    capacity: int
    working_hours: dict[str, Any]
    status: str
    regions: list[str]
    tags: list[str]
    open_leads: int
    created_at: datetime


@dataclass(frozen=True)
class RuleView:
    campaign_id: str
    kind: str
    team: str


@dataclass(frozen=True)
class LeadView:
    id: str
    tenant_id: str
    customer_id: str
    campaign_id: str
    channel_id: str
    team: str
    region: str
    tags: list[str]
    status: str
    rep_id: str | None
    rule: str
    captured_at: datetime
    assigned_at: datetime | None
    first_follow_up_at: datetime | None
