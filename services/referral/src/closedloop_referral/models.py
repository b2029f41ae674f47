"""The referral service's tables (its own database; no other service reads them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from loopkit.db import new_metadata
from loopkit.tables import customer_aliases_table, customer_moves_table, kit_tables


class Base(DeclarativeBase):
    metadata = new_metadata()


kit = kit_tables(Base.metadata)
# What each merge moved, so an unmerge gives it back (loopkit.customer_rows).
customer_moves = customer_moves_table(Base.metadata)
# Merged-away and forgotten ids: late events are counted for the live customer.
customer_aliases = customer_aliases_table(Base.metadata)


class ProgramRow(Base):
    __tablename__ = "programs"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # points | coupon | cash
    referrer_kind: Mapped[str] = mapped_column(String(16))
    referrer_points: Mapped[int] = mapped_column(BigInteger)
    referrer_coupon: Mapped[str] = mapped_column(String(64))
    referrer_cash_minor: Mapped[int] = mapped_column(BigInteger)
    # lead | first_paid_order | order_above_amount
    trigger: Mapped[str] = mapped_column(String(32))
    min_order_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # "" = no newcomer reward
    newcomer_kind: Mapped[str] = mapped_column(String(16))
    newcomer_points: Mapped[int] = mapped_column(BigInteger)
    newcomer_coupon: Mapped[str] = mapped_column(String(64))
    newcomer_cash_minor: Mapped[int] = mapped_column(BigInteger)
    cap_per_period: Mapped[int] = mapped_column(Integer)
    cap_period_days: Mapped[int] = mapped_column(Integer)
    levels: Mapped[int] = mapped_column(Integer)
    level2_percent: Mapped[int] = mapped_column(Integer)
    hold_seconds: Mapped[int] = mapped_column(BigInteger)
    attribution_window_seconds: Mapped[int] = mapped_column(BigInteger)
    channel_id: Mapped[str] = mapped_column(String(64))
    campaign_id: Mapped[str] = mapped_column(String(64))
    landing_url: Mapped[str] = mapped_column(String(1000))
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CodeRow(Base):
    __tablename__ = "codes"
    # One primary code per (customer, program): concurrent first calls cannot make two. A code
    # that came with a merged customer who had one too stays valid as a secondary code (its
    # `slot` is the code itself).
    __table_args__ = (UniqueConstraint("tenant_id", "customer_id", "program_id", "slot"),)

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    program_id: Mapped[str] = mapped_column(String(26))
    customer_id: Mapped[str] = mapped_column(String(26))
    slot: Mapped[str] = mapped_column(String(16))
    # The referrer's device hint when they created it ("" if unknown); personal data.
    device_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ShareRow(Base):
    __tablename__ = "shares"
    __table_args__ = (Index("ix_shares_tenant_customer", "tenant_id", "customer_id"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    program_id: Mapped[str] = mapped_column(String(26), index=True)
    code: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[str] = mapped_column(String(26))
    content_id: Mapped[str] = mapped_column(String(200))
    target: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VisitRow(Base):
    __tablename__ = "visits"
    __table_args__ = (
        Index("ix_visits_tenant_openid", "tenant_id", "visitor_openid"),
        Index("ix_visits_tenant_device", "tenant_id", "device_id"),
        Index("ix_visits_tenant_visitor", "tenant_id", "visitor_customer_id"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    program_id: Mapped[str] = mapped_column(String(26), index=True)
    code: Mapped[str] = mapped_column(String(16))
    share_id: Mapped[str] = mapped_column(String(26))
    referrer_id: Mapped[str] = mapped_column(String(26))
    # Filled when a lead of this visitor arrives; personal data below is erased on forget.
    visitor_customer_id: Mapped[str] = mapped_column(String(26))
    visitor_openid: Mapped[str] = mapped_column(String(128))
    visitor_appid: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[str] = mapped_column(String(128))
    # False when the program had ended (or not begun): counted, never attributed.
    program_active: Mapped[bool] = mapped_column()
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReferralRow(Base):
    __tablename__ = "referrals"
    # Never two referrals (so never two rewards) for one newcomer.
    __table_args__ = (
        UniqueConstraint("tenant_id", "newcomer_id"),
        Index("ix_referrals_tenant_referrer", "tenant_id", "referrer_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    program_id: Mapped[str] = mapped_column(String(26), index=True)
    referrer_id: Mapped[str] = mapped_column(String(26))
    newcomer_id: Mapped[str] = mapped_column(String(26))
    code: Mapped[str] = mapped_column(String(16))
    visit_id: Mapped[str] = mapped_column(String(26))
    lead_id: Mapped[str] = mapped_column(String(64))
    # approved | flagged | rejected | voided
    status: Mapped[str] = mapped_column(String(16))
    flag_reason: Mapped[str] = mapped_column(String(64))
    # The order that converted the newcomer (first paid), and the qualifying one if any.
    order_id: Mapped[str] = mapped_column(String(64))
    qualified_order_id: Mapped[str] = mapped_column(String(64))
    qualified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    converted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RewardRow(Base):
    __tablename__ = "rewards"
    # One reward per level per referral: a redelivered or repeated order.paid cannot add another.
    __table_args__ = (
        UniqueConstraint("tenant_id", "referral_id", "level"),
        Index("ix_rewards_tenant_beneficiary", "tenant_id", "beneficiary_id", "created_at"),
        Index("ix_rewards_status_hold", "status", "hold_until"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    referral_id: Mapped[str] = mapped_column(String(26))
    program_id: Mapped[str] = mapped_column(String(26))
    beneficiary_id: Mapped[str] = mapped_column(String(26))
    level: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(BigInteger)
    coupon_template_id: Mapped[str] = mapped_column(String(64))
    cash_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # pending | flagged | approved | granted | voided (migration 0002 renamed held/revoked)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200))
    hold_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    granted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LedgerRow(Base):
    __tablename__ = "ledger"
    __table_args__ = (Index("ix_ledger_tenant_referral", "tenant_id", "referral_id", "at"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    referral_id: Mapped[str] = mapped_column(String(26))
    reward_id: Mapped[str] = mapped_column(String(26))
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class KnownCustomerRow(Base):
    """Customers this service has seen become leads or pay: how an existing customer is told."""

    __tablename__ = "known_customers"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    first_lead_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The first paid order: a lead handled after its order (the two streams race) converts then.
    first_paid_order_id: Mapped[str | None] = mapped_column(String(64))
    first_paid_minor: Mapped[int | None] = mapped_column(BigInteger)
