"""What the ownership concept hands to transports: plain values, never rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class OwnershipView:
    id: str
    tenant_id: str
    customer_id: str
    rep_id: str
    corp_id: str
    external_userid: str
    channel_id: str
    state: str
    status: str
    started_at: datetime
    ended_at: datetime | None
    end_reason: str
    remark: str
    welcome_status: str
    welcome_latency_ms: int | None


@dataclass(frozen=True)
class TransferView:
    id: str
    batch_id: str
    customer_id: str
    from_rep_id: str
    to_rep_id: str
    mode: str
    status: str
    reason: str
    actor: str
    requested_at: datetime
    completed_at: datetime | None
    leads_moved: int
    opportunities_moved: int


@dataclass(frozen=True)
class WelcomeJob:
    """A welcome message due right after the commit, within WeCom's window."""

    tenant_id: str
    ownership_id: str
    customer_id: str
    corp_id: str
    external_userid: str
    rep_wecom_user_id: str
    welcome_code: str
    text: str
    event_at: datetime
    deadline: datetime


@dataclass(frozen=True)
class ChangeOutcome:
    applied: bool
    note: str
    ownership: OwnershipView | None = None
    welcome: WelcomeJob | None = None


@dataclass(frozen=True)
class TransferBatch:
    batch_id: str
    transfers: list[TransferView]
