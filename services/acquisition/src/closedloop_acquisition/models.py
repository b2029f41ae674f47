"""The acquisition service's tables (its own database; no other service reads them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from loopkit.db import new_metadata
from loopkit.tables import kit_tables


class Base(DeclarativeBase):
    metadata = new_metadata()


kit = kit_tables(Base.metadata)


class CampaignRow(Base):
    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(2000))
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    goal_leads: Mapped[int] = mapped_column(Integer)
    # Fission campaigns: new subscribers a participant must bring (0 = not fission).
    fission_goal: Mapped[int] = mapped_column(Integer)
    fission_reward: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ChannelRow(Base):
    __tablename__ = "channels"
    # A scene value (QR) or state (contact-me code) names one channel of a tenant; NULLs repeat.
    __table_args__ = (
        UniqueConstraint("tenant_id", "scene"),
        UniqueConstraint("tenant_id", "state"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    campaign_id: Mapped[str] = mapped_column(String(26), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    scene: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    state: Mapped[str | None] = mapped_column(String(64))
    app_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2000))
    parameters: Mapped[dict[str, str]] = mapped_column(JSON)
    owner_team: Mapped[str] = mapped_column(String(100))
    welcome_message: Mapped[str] = mapped_column(String(2000))
    # The reply to a scan outside the schedule or after the code expired.
    expired_reply: Mapped[str] = mapped_column(String(2000), default="")
    tags: Mapped[list[str]] = mapped_column(JSON)
    schedule: Mapped[dict[str, Any]] = mapped_column(JSON)
    daily_cap_per_rep: Mapped[int] = mapped_column(Integer)
    cost_currency: Mapped[str] = mapped_column(String(3))
    cost_minor: Mapped[int] = mapped_column(Integer)
    region: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Contact-me codes: the WeCom corp and the reps the code adds as friends.
    corp_id: Mapped[str] = mapped_column(String(64), server_default="")
    user_ids: Mapped[list[str]] = mapped_column(JSON, server_default=text("'[]'"))
    skip_verify: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # The code WeChat issued through the gateway: a QR code's ticket, the URL it encodes and its
    # image; a contact-me code's config_id and image (code_image_url). NULL without a code.
    code_ticket: Mapped[str | None] = mapped_column(String(512))
    code_url: Mapped[str | None] = mapped_column(String(2000))
    code_image_url: Mapped[str | None] = mapped_column(String(2000))
    code_config_id: Mapped[str | None] = mapped_column(String(128))
    # Why a channel of a kind that has a code has none (no gateway configured).
    code_note: Mapped[str] = mapped_column(String(500), server_default="")
    # Deleted: its contact-me code removed at WeCom; kept (expired) for the history it has.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A contact-me channel that ended (its expiry or its campaign's end passed): when its code
    # was removed at WeCom, and the lease of the replica removing it (the row is the queue).
    code_released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    code_release_lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LandingPageRow(Base):
    __tablename__ = "landing_pages"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    campaign_id: Mapped[str] = mapped_column(String(26))
    channel_id: Mapped[str | None] = mapped_column(String(26))
    title: Mapped[str] = mapped_column(String(200))
    # [{name, type, label, required, consent_wording, max_length}]
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # WeChat web authorization before the form: "none", "base" (silent) or "userinfo".
    sign_in: Mapped[str] = mapped_column(String(16), server_default="base")
    # The official account to authorize with ("" = the tenant's default one).
    app_id: Mapped[str] = mapped_column(String(64), server_default="")


class TouchRow(Base):
    __tablename__ = "touches"
    __table_args__ = (
        Index("ix_touches_tenant_customer", "tenant_id", "customer_id", "occurred_at"),
        Index("ix_touches_tenant_channel", "tenant_id", "channel_id", "occurred_at"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[str | None] = mapped_column(String(26))
    campaign_id: Mapped[str | None] = mapped_column(String(26))
    channel_kind: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[str | None] = mapped_column(String(26))
    expired: Mapped[bool] = mapped_column(Boolean)
    # Personal data (openids...): erased when the customer is forgotten.
    identities: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    referrer_customer_id: Mapped[str | None] = mapped_column(String(26), index=True)
    referral_code: Mapped[str | None] = mapped_column(String(64))
    parameters: Mapped[dict[str, str]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LeadRow(Base):
    __tablename__ = "leads"
    # One lead per customer per campaign: a re-submission updates it.
    __table_args__ = (UniqueConstraint("tenant_id", "customer_id", "campaign_id"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[str] = mapped_column(String(26))
    campaign_id: Mapped[str] = mapped_column(String(26))
    channel_id: Mapped[str | None] = mapped_column(String(26), index=True)
    page_id: Mapped[str] = mapped_column(String(26))
    # Personal data: erased when the customer is forgotten.
    values: Mapped[dict[str, str]] = mapped_column(JSON)
    consent_granted: Mapped[bool] = mapped_column(Boolean)
    consent_wording: Mapped[str] = mapped_column(String(2000))
    attribution: Mapped[dict[str, Any]] = mapped_column(JSON)
    submissions: Mapped[int] = mapped_column(Integer)
    forgotten: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LeadAliasRow(Base):
    """A lead folded into another when their customers merged: its id keeps answering."""

    __tablename__ = "lead_aliases"

    lead_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    survivor_lead_id: Mapped[str] = mapped_column(String(26), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LeadRequestRow(Base):
    """A CaptureLead idempotency key and the first answer it got: a retried call (the client timed
    out after the commit) returns that answer instead of counting a re-submission."""

    __tablename__ = "lead_requests"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    page_id: Mapped[str] = mapped_column(String(26))
    lead_id: Mapped[str] = mapped_column(String(26))
    repeat: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class WechatInboxRow(Base):
    """A WeChat callback message as received: stored on the request, processed by a worker."""

    __tablename__ = "wechat_inbox"
    # WeChat retries a message up to three times: the same key is stored once.
    __table_args__ = (
        UniqueConstraint("app_id", "dedup_key"),
        Index("ix_wechat_inbox_pending", "processed_at", "received_at"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    app_id: Mapped[str] = mapped_column(String(64))
    dedup_key: Mapped[str] = mapped_column(String(200))
    # Personal data (the openid): blanked when the customer is forgotten.
    from_user: Mapped[str] = mapped_column(String(128), index=True)
    message: Mapped[dict[str, str]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(Text)
    # The W3C trace context of the callback request: the worker continues that trace.
    trace_context: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)


class FissionParticipantRow(Base):
    """A participant of a fission campaign: their own QR channel and how many they brought."""

    __tablename__ = "fission_participants"
    __table_args__ = (UniqueConstraint("tenant_id", "campaign_id", "customer_id"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    campaign_id: Mapped[str] = mapped_column(String(26))
    customer_id: Mapped[str] = mapped_column(String(26), index=True)
    channel_id: Mapped[str] = mapped_column(String(26), unique=True)
    invited: Mapped[int] = mapped_column(Integer)
    reached_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
