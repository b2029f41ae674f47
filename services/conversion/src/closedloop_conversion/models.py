"""The conversion service's tables (its own database; no other service reads them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from loopkit.db import new_metadata
from loopkit.tables import kit_tables


class Base(DeclarativeBase):
    metadata = new_metadata()


kit = kit_tables(Base.metadata)


class RepRow(Base):
    __tablename__ = "reps"
    __table_args__ = (
        UniqueConstraint("tenant_id", "wecom_user_id"),
        Index("ix_reps_tenant_team", "tenant_id", "team"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    wecom_user_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    team: Mapped[str] = mapped_column(String(128))
    capacity: Mapped[int] = mapped_column(Integer)
    working_hours: Mapped[dict[str, Any]] = mapped_column(JSON)
    regions: Mapped[list[str]] = mapped_column(JSON)
    tags: Mapped[list[str]] = mapped_column(JSON)
    # active | departed
    status: Mapped[str] = mapped_column(String(16))
    # Assigned, not closed leads: compared with capacity, kept in step under the row lock.
    open_leads: Mapped[int] = mapped_column(Integer)
    # Round-robin turn: the rep with the lowest value in the pool is next.
    rr_seq: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    departed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AssignmentRuleRow(Base):
    __tablename__ = "assignment_rules"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    team: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LeadRow(Base):
    __tablename__ = "leads"
    __table_args__ = (
        Index("ix_leads_tenant_status", "tenant_id", "status", "captured_at"),
        Index("ix_leads_tenant_rep", "tenant_id", "rep_id"),
        Index("ix_leads_tenant_customer", "tenant_id", "customer_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(26))
    campaign_id: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[str] = mapped_column(String(64))
    team: Mapped[str] = mapped_column(String(128))
    region: Mapped[str] = mapped_column(String(128))
    tags: Mapped[list[str]] = mapped_column(JSON)
    # unassigned | assigned | won | lost
    status: Mapped[str] = mapped_column(String(16))
    rep_id: Mapped[str | None] = mapped_column(String(26))
    rule: Mapped[str] = mapped_column(String(32))
    captured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_follow_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Its channel's most leads per rep per (UTC) day; 0 = no cap.
    daily_cap: Mapped[int] = mapped_column(Integer, default=0)


class LeadAssignmentRow(Base):
    """Every assignment of a lead: who got it, from whom, by which rule, asked by whom."""

    __tablename__ = "lead_assignments"
    __table_args__ = (Index("ix_lead_assignments_tenant_rep", "tenant_id", "to_rep_id", "at"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    lead_id: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[str] = mapped_column(String(26))
    from_rep_id: Mapped[str | None] = mapped_column(String(26))
    to_rep_id: Mapped[str] = mapped_column(String(26))
    rule: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ContactWayRow(Base):
    __tablename__ = "contact_ways"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(64))
    welcome_text: Mapped[str] = mapped_column(String(4000))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OwnershipRow(Base):
    """A rep's WeCom friendship with a customer: the company's asset."""

    __tablename__ = "ownerships"
    __table_args__ = (
        UniqueConstraint("tenant_id", "corp_id", "rep_id", "external_userid"),
        Index("ix_ownerships_tenant_customer", "tenant_id", "customer_id"),
        Index("ix_ownerships_tenant_rep", "tenant_id", "rep_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    corp_id: Mapped[str] = mapped_column(String(64))
    rep_id: Mapped[str] = mapped_column(String(26))
    customer_id: Mapped[str] = mapped_column(String(26))
    # Personal data: blanked when the customer is forgotten.
    external_userid: Mapped[str] = mapped_column(String(128))
    channel_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(64))
    # active | ended | transferred
    status: Mapped[str] = mapped_column(String(16))
    remark: Mapped[str] = mapped_column(String(500))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # rep_deleted_customer | customer_deleted_rep | transferred
    end_reason: Mapped[str] = mapped_column(String(32))
    welcome_status: Mapped[str] = mapped_column(String(16))
    welcome_latency_ms: Mapped[int | None] = mapped_column(Integer)


class CallbackRow(Base):
    """WeCom callbacks already applied: a redelivered callback finds its key and does nothing."""

    __tablename__ = "wecom_callbacks"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    change_type: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TransferRow(Base):
    __tablename__ = "transfers"
    __table_args__ = (
        Index("ix_transfers_tenant_customer", "tenant_id", "customer_id", "requested_at"),
        Index("ix_transfers_tenant_status", "tenant_id", "status", "requested_at"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    batch_id: Mapped[str] = mapped_column(String(26))
    customer_id: Mapped[str] = mapped_column(String(26))
    ownership_id: Mapped[str] = mapped_column(String(26))
    from_rep_id: Mapped[str] = mapped_column(String(26))
    to_rep_id: Mapped[str] = mapped_column(String(26))
    # resigned | on_job
    mode: Mapped[str] = mapped_column(String(16))
    # pending | completed | refused | over_limit | failed (WeCom did not take the request)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When WeCom was asked (through the gateway); None while it is still to be asked.
    wecom_requested_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    leads_moved: Mapped[int] = mapped_column(Integer)
    opportunities_moved: Mapped[int] = mapped_column(Integer)


class FollowUpRow(Base):
    __tablename__ = "follow_ups"
    __table_args__ = (
        # Chat archive messages are stored once per message id.
        UniqueConstraint("tenant_id", "message_id"),
        Index("ix_follow_ups_tenant_rep", "tenant_id", "rep_id", "at"),
        Index("ix_follow_ups_tenant_customer", "tenant_id", "customer_id"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(26))
    rep_id: Mapped[str] = mapped_column(String(26))
    lead_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    # Personal data: blanked when the customer is forgotten.
    summary: Mapped[str] = mapped_column(String(2000))
    inbound: Mapped[bool] = mapped_column(Boolean)
    message_id: Mapped[str | None] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PipelineRow(Base):
    __tablename__ = "pipelines"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    stages: Mapped[list[str]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OpportunityRow(Base):
    __tablename__ = "opportunities"
    __table_args__ = (
        Index("ix_opportunities_tenant_rep", "tenant_id", "rep_id"),
        Index("ix_opportunities_tenant_customer", "tenant_id", "customer_id"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(26))
    rep_id: Mapped[str] = mapped_column(String(26))
    lead_id: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    stage: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    expected_minor: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_tenant_customer", "tenant_id", "customer_id"),
        Index("ix_orders_tenant_rep", "tenant_id", "rep_id"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(26))
    rep_id: Mapped[str | None] = mapped_column(String(26))
    opportunity_id: Mapped[str | None] = mapped_column(String(26))
    lead_id: Mapped[str | None] = mapped_column(String(64))
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    refunded_minor: Mapped[int] = mapped_column(BigInteger)
    # placed | paid | partially_refunded | refunded
    status: Mapped[str] = mapped_column(String(24))
    placed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RefundRow(Base):
    __tablename__ = "refunds"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[str] = mapped_column(String(26), index=True)
    rep_id: Mapped[str | None] = mapped_column(String(26))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# (table, column) pairs naming a customer: re-pointed on customer.merged.
class RepTaskRow(Base):
    """Something a rep should do about a customer (a win-back call), made from another
    service's event, once per (kind, source)."""

    __tablename__ = "rep_tasks"
    __table_args__ = (
        UniqueConstraint("tenant_id", "kind", "source_id"),
        Index("ix_rep_tasks_rep", "tenant_id", "rep_id", "status", "due_at"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    rep_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(26))
    # "win_back"
    kind: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    # open | done
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome_note: Mapped[str] = mapped_column(String(2000), default="")
    # Whether the rep was told (closedloop_conversion.notices): pending | sent | failed |
    # not_notified, and why (the gateway's reason, or what is not configured).
    rep_notice: Mapped[str] = mapped_column(String(16), default="")
    rep_notice_detail: Mapped[str] = mapped_column(String(300), default="")


class RepNoticeRow(Base):
    """A message to a rep (a new task, a lead assigned) waiting to be handed to the gateway,
    once per idempotency key; its outcome is copied onto the task it is about."""

    __tablename__ = "rep_notices"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_rep_notices_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    # task:<task id> | assigned:<lead id>[:<assignment event id>]: the gateway's key too.
    idempotency_key: Mapped[str] = mapped_column(String(200))
    rep_id: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[str | None] = mapped_column(String(26))
    lead_id: Mapped[str | None] = mapped_column(String(64))
    corp_id: Mapped[str] = mapped_column(String(64))
    userid: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(String(2000))
    # pending | sent | failed | not_notified
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


CUSTOMER_COLUMNS = [
    (Base.metadata.tables[name], "customer_id")
    for name in (
        "leads",
        "lead_assignments",
        "ownerships",
        "transfers",
        "follow_ups",
        "opportunities",
        "orders",
        "rep_tasks",
    )
]
