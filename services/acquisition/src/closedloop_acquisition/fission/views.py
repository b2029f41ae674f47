"""What fission use cases hand to transports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from closedloop_acquisition.catalog.views import CampaignView, ChannelView


@dataclass(frozen=True)
class ParticipantView:
    id: str
    tenant_id: str
    campaign_id: str
    customer_id: str
    channel_id: str
    invited: int
    reached_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Progress:
    participant: ParticipantView
    campaign: CampaignView
    channel: ChannelView
    created: bool = False
