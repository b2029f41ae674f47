"""What the pipeline concept hands to transports: plain values, never rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class FollowUpView:
    id: str
    tenant_id: str
    customer_id: str
    rep_id: str
    kind: str
    summary: str
    inbound: bool
    at: datetime
    lead_id: str | None


@dataclass(frozen=True)
class OpportunityView:
    id: str
    tenant_id: str
    customer_id: str
    rep_id: str
    lead_id: str | None
    title: str
    stage: str
    currency: str
    expected_minor: int
    created_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class OrderView:
    id: str
    tenant_id: str
    customer_id: str
    rep_id: str | None
    opportunity_id: str | None
    lead_id: str | None
    items: list[dict[str, Any]]
    currency: str
    amount_minor: int
    refunded_minor: int
    status: str
    placed_at: datetime
    paid_at: datetime | None
