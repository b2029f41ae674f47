"""What the broadcasts concept hands to transports and workers: plain values, never rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Stats:
    recipients: int
    scheduled: int
    sent: int
    skipped: int
    failed: int
    by_reason: dict[str, int]
    # Of the sent, what WeChat made of them (the gateway's message.sent / message.failed).
    delivered: int = 0
    delivery_failed: int = 0


@dataclass(frozen=True)
class BroadcastView:
    id: str
    segment_id: str
    expression: str
    template: str
    window_start: datetime
    window_end: datetime
    status: str
    created_at: datetime
    wechat_template_id: str = ""
    wechat_template_data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Broadcast:
    broadcast: BroadcastView
    stats: Stats


@dataclass(frozen=True)
class RecipientView:
    broadcast_id: str
    customer_id: str
    tenant_id: str
    status: str
    reason: str
    send_at: datetime | None
    sent_at: datetime | None
    message_id: str
    delivery: str = ""
    delivery_errcode: int = 0


@dataclass(frozen=True)
class Due:
    """A recipient due for sending, with what the dispatcher needs to send: the text, the
    template message for outside WeChat's 48-hour window (if any), where it goes and the
    customer's last interaction (whether the window is open)."""

    recipient: RecipientView
    template: str
    contact_kind: str
    contact_scope: str
    contact_value: str
    wechat_template_id: str = ""
    wechat_template_data: dict[str, str] = field(default_factory=dict)
    last_interaction_at: datetime | None = None
