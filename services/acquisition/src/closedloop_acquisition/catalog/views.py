"""What the catalog hands to transports: copies of campaigns, channels and pages, not rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class CampaignView:
    id: str
    tenant_id: str
    name: str
    description: str
    starts_at: datetime | None
    ends_at: datetime | None
    goal_leads: int
    fission_goal: int
    fission_reward: str
    created_at: datetime


@dataclass(frozen=True)
class ChannelView:
    id: str
    tenant_id: str
    campaign_id: str
    name: str
    kind: str
    scene: str | None
    expires_at: datetime | None
    state: str | None
    app_id: str
    url: str
    parameters: dict[str, str]
    owner_team: str
    welcome_message: str
    expired_reply: str
    tags: list[str]
    schedule: dict[str, Any]
    daily_cap_per_rep: int
    cost_currency: str
    cost_minor: int
    region: str
    created_at: datetime
    corp_id: str
    user_ids: list[str]
    skip_verify: bool
    code_ticket: str | None
    code_url: str | None
    code_image_url: str | None
    code_config_id: str | None
    code_note: str
    deleted_at: datetime | None
    # An ended contact-me channel's code removed at WeCom (by the release worker).
    code_released_at: datetime | None = None


@dataclass(frozen=True)
class LandingPageView:
    id: str
    tenant_id: str
    campaign_id: str
    channel_id: str | None
    title: str
    fields: list[dict[str, Any]]
    created_at: datetime
    sign_in: str
    app_id: str


@dataclass(frozen=True)
class ChannelTerms:
    """What a form is checked against and a lead credited with: the parts of a channel that
    never change after it was created (DeleteChannel only marks it deleted and expired)."""

    id: str
    tenant_id: str
    campaign_id: str
    kind: str
    schedule: dict[str, Any]
    owner_team: str
    tags: list[str]
    region: str
    daily_cap_per_rep: int
