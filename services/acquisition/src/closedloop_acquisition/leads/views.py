"""What lead use cases hand to transports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class LeadView:
    id: str
    tenant_id: str
    customer_id: str
    campaign_id: str
    channel_id: str | None
    page_id: str
    values: dict[str, str]
    consent_granted: bool
    consent_wording: str
    attribution: dict[str, Any]
    submissions: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CapturedLead:
    lead: LeadView
    repeat: bool
