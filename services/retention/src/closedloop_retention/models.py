"""The retention service's tables (its own database; no other service reads them). Over 400
lines because it is only declarations, one class per table: splitting it would scatter the
schema Alembic compares against."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from loopkit.db import new_metadata
from loopkit.tables import customer_moves_table, kit_tables


class Base(DeclarativeBase):
    metadata = new_metadata()


kit = kit_tables(Base.metadata)
# What each merge moved, so an unmerge gives it back (loopkit.customer_rows).
customer_moves = customer_moves_table(Base.metadata)


class ActivityRow(Base):
    """One row per customer: what the other services' events told us about them."""

    __tablename__ = "activity"
    __table_args__ = (
        # The segments' index (migrations 0020_segment5, 0021_seg7): a segment's count reads it
        # alone. Every column a key column and no float8 (churn_risk) on PostgreSQL, so a
        # review's new row version with equal entries joins the last one's posting list
        # (deduplication) instead of splitting a page; SQLite keeps the first three.
        Index(
            "ix_activity_tenant_segment",
            "tenant_id",
            "stage",
            "last_order_at",
            "customer_id",
            "order_count",
            "revenue_minor",
            "first_order_at",
            "first_seen_at",
            "unsubscribed",
            "consent",
            "deleted_rep",
            "referrals_made",
            "channel_id",
            "channel_kind",
            "owner_rep_id",
        ),
        Index("ix_activity_tenant_stage", "tenant_id", "stage"),
        Index("ix_activity_tenant_last_order", "tenant_id", "last_order_at"),
        Index("ix_activity_tenant_review", "tenant_id", "next_review_at"),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    revenue_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    first_order_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_order_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_interaction_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    referrals_made: Mapped[int] = mapped_column(Integer, default=0)
    unsubscribed: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_rep: Mapped[bool] = mapped_column(Boolean, default=False)
    consent: Mapped[bool] = mapped_column(Boolean, default=False)
    channel_id: Mapped[str] = mapped_column(String(64), default="")
    channel_kind: Mapped[str] = mapped_column(String(32), default="")
    owner_rep_id: Mapped[str] = mapped_column(String(64), default="")
    # Where a message reaches them: an identity kind/scope/value (openid, external_userid).
    contact_kind: Mapped[str] = mapped_column(String(32), default="")
    contact_scope: Mapped[str] = mapped_column(String(256), default="")
    contact_value: Mapped[str] = mapped_column(String(256), default="")
    # Interactions per local hour of day (24 counts): when they usually read.
    active_hours: Mapped[list[int]] = mapped_column(JSON)
    stage: Mapped[str] = mapped_column(String(16), default="investigation")
    stage_reason: Mapped[str] = mapped_column(String(300), default="")
    stage_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When time alone can next move the stage or the churn risk (the sweep's work list).
    next_review_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    churn_risk: Mapped[float] = mapped_column(Float, default=0.0)
    churn_risk_raised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Win-back offers made since the last order, and when the last one was made.
    win_back_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_win_back_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The RFM scores: computed from the narrow customer_value row (its inputs) and the tenant's
    # cut-offs, both loaded with the row; a buyer not scored yet (or no buyer) reads as zeros.
    scores: Mapped[CustomerValueRow | None] = relationship(
        primaryjoin="and_(ActivityRow.tenant_id == foreign(CustomerValueRow.tenant_id), "
        "ActivityRow.customer_id == foreign(CustomerValueRow.customer_id))",
        lazy="joined",
        uselist=False,
        viewonly=True,
    )

    @property
    def rfm_r(self) -> int:
        return self.scores.rfm_r if self.scores is not None else 0

    @property
    def rfm_f(self) -> int:
        return self.scores.rfm_f if self.scores is not None else 0

    @property
    def rfm_m(self) -> int:
        return self.scores.rfm_m if self.scores is not None else 0

    @property
    def rfm_score(self) -> int:
        return self.scores.rfm_score if self.scores is not None else 0

    @property
    def top_customer(self) -> bool:
        return self.scores.top_customer if self.scores is not None else False


# The top list's order (value.top_customers; migration 0020_segment5): its first entries that are
# top customers are the answer, no sort of every customer.
Index(
    "ix_activity_tenant_revenue",
    ActivityRow.tenant_id,
    ActivityRow.revenue_minor.desc(),
    ActivityRow.customer_id,
)


class RfmCutOffsRow(Base):
    """A tenant's RFM quintile cut-offs as of its last rescore (`activity/value.py`): the values
    at the 20/40/60/80 % positions of the buyers' last order times, order counts and revenues
    (ascending), and the revenue at position ceil(20 % of n) from the top. The scores are
    computed from these when read (`CustomerValueRow`, the segment compiler, the top list), so a
    rescore writes this one row, never a customer's. `generation` counts the rescores: a
    `customer_value` row whose inputs changed since the last one holds the inputs it had then
    (`held_*`), so its scores stay what that rescore gave until the next. Cut-offs are NULL
    when the tenant had no buyer."""

    __tablename__ = "rfm_cut_offs"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer)
    buyers: Mapped[int] = mapped_column(Integer)
    recency_20: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recency_40: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recency_60: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recency_80: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    frequency_20: Mapped[int | None] = mapped_column(Integer)
    frequency_40: Mapped[int | None] = mapped_column(Integer)
    frequency_60: Mapped[int | None] = mapped_column(Integer)
    frequency_80: Mapped[int | None] = mapped_column(Integer)
    monetary_20: Mapped[int | None] = mapped_column(BigInteger)
    monetary_40: Mapped[int | None] = mapped_column(BigInteger)
    monetary_60: Mapped[int | None] = mapped_column(BigInteger)
    monetary_80: Mapped[int | None] = mapped_column(BigInteger)
    top_revenue: Mapped[int | None] = mapped_column(BigInteger)
    # Where each cut-off sat among the buyers this rescore ranked: {name: [values below it,
    # values at or below it]}, so the next rescore can move it by the changed rows alone
    # (activity/value.py). NULL: the next rescore ranks every buyer (first run, migrated rows).
    ranks: Mapped[dict[str, list[int]] | None] = mapped_column(JSON)

    def recency(self) -> tuple[Any, ...]:
        return (self.recency_20, self.recency_40, self.recency_60, self.recency_80)

    def frequency(self) -> tuple[Any, ...]:
        return (self.frequency_20, self.frequency_40, self.frequency_60, self.frequency_80)

    def monetary(self) -> tuple[Any, ...]:
        return (self.monetary_20, self.monetary_40, self.monetary_60, self.monetary_80)


# A buyer: at least one order not refunded (the rows the cut-offs rank, and their indexes).
_BUYER = text("order_count > 0 AND last_order_at IS NOT NULL")


def _rank_index(name: str, column: str) -> Index:
    """A partial index of the buyers' values of one input, so a cut-off at rank k is an
    index-only `ORDER BY … LIMIT 1 OFFSET k`, never a sort."""
    return Index(name, "tenant_id", column, postgresql_where=_BUYER, sqlite_where=_BUYER)


class CustomerValueRow(Base):
    """A buyer's RFM inputs: the last order time, orders and revenue (copies of the activity
    row's, written where those change: `ActivityRepository.keep_value_inputs`), each indexed
    for the cut-offs. The scores (quintiles 1..5, 5 best, and whether in the top 20% by
    revenue) are not stored: they are computed from the tenant's cut-offs (`cuts`, as of the
    last rescore) and the inputs that rescore saw — the `held_*` ones when the inputs changed
    since (`held_generation` is then the cut-offs' generation; NULL held inputs: no buyer then,
    or no row yet), else the current ones. A row exists once a customer has bought; no row,
    no cut-offs or no buyer at the last rescore read as scores 0."""

    __tablename__ = "customer_value"
    __table_args__ = (
        _rank_index("ix_customer_value_recency", "last_order_at"),
        _rank_index("ix_customer_value_frequency", "order_count"),
        _rank_index("ix_customer_value_monetary", "revenue_minor"),
        # The rows changed since a rescore (`held_generation` is its generation): what the next
        # one re-counts instead of every buyer.
        Index("ix_customer_value_held", "tenant_id", "held_generation"),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    last_order_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    revenue_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    held_generation: Mapped[int | None] = mapped_column(Integer)
    held_last_order_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    held_order_count: Mapped[int | None] = mapped_column(Integer)
    held_revenue_minor: Mapped[int | None] = mapped_column(BigInteger)
    cuts: Mapped[RfmCutOffsRow | None] = relationship(
        primaryjoin="foreign(CustomerValueRow.tenant_id) == RfmCutOffsRow.tenant_id",
        lazy="joined",
        uselist=False,
        viewonly=True,
    )

    def _scored(self) -> tuple[RfmCutOffsRow, datetime, int, int] | None:
        """The cut-offs and the inputs the last rescore scored; None if it scored none."""
        cuts = self.cuts
        if cuts is None or cuts.recency_20 is None:
            return None
        if self.held_generation == cuts.generation:
            last, orders, revenue = (
                self.held_last_order_at,
                self.held_order_count or 0,
                self.held_revenue_minor or 0,
            )
        else:
            last, orders, revenue = self.last_order_at, self.order_count, self.revenue_minor
        if orders <= 0 or last is None:
            return None
        return cuts, last, orders, revenue

    @staticmethod
    def _quintile(value: Any, cuts: tuple[Any, ...]) -> int:
        return 1 + sum(1 for cut in cuts if value > cut)

    @property
    def rfm_r(self) -> int:
        s = self._scored()
        return self._quintile(s[1], s[0].recency()) if s else 0

    @property
    def rfm_f(self) -> int:
        s = self._scored()
        return self._quintile(s[2], s[0].frequency()) if s else 0

    @property
    def rfm_m(self) -> int:
        s = self._scored()
        return self._quintile(s[3], s[0].monetary()) if s else 0

    @property
    def rfm_score(self) -> int:
        return self.rfm_r * 100 + self.rfm_f * 10 + self.rfm_m

    @property
    def top_customer(self) -> bool:
        s = self._scored()
        return s is not None and s[0].top_revenue is not None and s[3] >= s[0].top_revenue


class RfmDepartedRow(Base):
    """The inputs a rescore ranked of a buyer's `customer_value` row deleted since (a merge, an
    unmerge, an erasure): the next rescore takes them out of its counts (activity/value.py) and
    deletes these rows. No customer id: an erased customer leaves only the three numbers."""

    __tablename__ = "rfm_departed"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    tenant_id: Mapped[str] = mapped_column(String(64))
    generation: Mapped[int] = mapped_column(Integer)
    last_order_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    order_count: Mapped[int] = mapped_column(Integer)
    revenue_minor: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_rfm_departed_tenant", "tenant_id", "generation"),)


class OrderRow(Base):
    """Paid orders as retention saw them (for cycles, refunds and points)."""

    __tablename__ = "orders"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(26), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    fully_refunded: Mapped[bool] = mapped_column(Boolean, default=False)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class OrderItemRow(Base):
    """The products of paid orders (not fully refunded): what cross-sell co-occurrence counts."""

    __tablename__ = "order_items"
    __table_args__ = (
        Index("ix_order_items_customer", "tenant_id", "customer_id"),
        Index("ix_order_items_sku", "tenant_id", "sku", "customer_id"),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(26))
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(64))


class TagRow(Base):
    __tablename__ = "customer_tags"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    # manual | lead (from the lead's tags)
    source: Mapped[str] = mapped_column(String(16))


class StageChangeRow(Base):
    __tablename__ = "stage_changes"
    __table_args__ = (Index("ix_stage_changes_customer", "tenant_id", "customer_id", "at"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(26))
    from_stage: Mapped[str] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(300))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RulesRow(Base):
    __tablename__ = "tenant_rules"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # A rules change wants every customer reviewed: since when (None: no review pending), and
    # the last customer id the background review has reached (its keyset position).
    review_wanted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    review_after: Mapped[str] = mapped_column(String(26), default="", server_default="")


class LoyaltyAccountRow(Base):
    """The balance is the ledger's sum, kept beside it in the same transaction so a redemption
    can check and debit it with one conditional UPDATE."""

    __tablename__ = "loyalty_accounts"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_points: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LedgerRow(Base):
    __tablename__ = "points_ledger"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_points_ledger_customer", "tenant_id", "customer_id", "created_at"),
        Index("ix_points_ledger_source", "tenant_id", "source_ref"),
        # The entries whose key has not expired yet (the key sweep's way in).
        Index(
            "ix_points_ledger_key_kept",
            "created_at",
            postgresql_where=text("idempotency_key IS NOT NULL"),
            sqlite_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(26))
    points: Mapped[int] = mapped_column(BigInteger)
    # order | refund | referral | redeem | manual | merge
    source: Mapped[str] = mapped_column(String(16))
    source_ref: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(300))
    # A client's key (redeem:, manual:) is NULL once older than
    # CLOSEDLOOP_IDEMPOTENCY_KEY_RETENTION_S; the ledger's own keys (order:, refund:, reward:,
    # revoke:, ...) stay: they are what makes an order or a reward count once, ever.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CouponRow(Base):
    __tablename__ = "coupons"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_coupons_customer", "tenant_id", "customer_id"),
        # The coupons whose key has not expired yet (the key sweep's way in).
        Index(
            "ix_coupons_key_kept",
            "issued_at",
            postgresql_where=text("idempotency_key IS NOT NULL"),
            sqlite_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(26))
    template_id: Mapped[str] = mapped_column(String(64))
    value_minor: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(300))
    # NULL once older than CLOSEDLOOP_IDEMPOTENCY_KEY_RETENTION_S, except a referral reward's
    # (reward:), which makes the reward count once however late its event comes again.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    redeemed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when the reward that issued it was clawed back: it can no longer be redeemed.
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SegmentRow(Base):
    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    expression: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BroadcastRow(Base):
    __tablename__ = "broadcasts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index(
            "ix_broadcasts_key_kept",
            "created_at",
            postgresql_where=text("idempotency_key IS NOT NULL"),
            sqlite_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    segment_id: Mapped[str] = mapped_column(String(26))
    expression: Mapped[str] = mapped_column(String(2000))
    template: Mapped[str] = mapped_column(String(2000))
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # scheduled | sending | completed
    status: Mapped[str] = mapped_column(String(16))
    # CreateBroadcast's key: NULL once older than CLOSEDLOOP_IDEMPOTENCY_KEY_RETENTION_S.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The official-account template message for recipients outside the 48-hour window ("" =
    # none: they are skipped, window_closed) and its keyword data.
    wechat_template_id: Mapped[str] = mapped_column(String(64), default="", server_default="")
    wechat_template_data: Mapped[dict[str, str]] = mapped_column(
        JSON, default=dict, server_default="{}"
    )


class RecipientRow(Base):
    __tablename__ = "broadcast_recipients"
    __table_args__ = (
        Index("ix_broadcast_recipients_due", "status", "send_at"),
        Index("ix_broadcast_recipients_customer", "tenant_id", "customer_id", "send_at"),
    )

    broadcast_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    # scheduled | sent | skipped | failed
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64), default="")
    send_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    message_id: Mapped[str] = mapped_column(String(64), default="")
    # What WeChat made of it (the gateway's message.sent / message.failed): "" = no word yet,
    # delivered, failed (+ WeChat's errcode).
    delivery: Mapped[str] = mapped_column(String(16), default="")
    delivery_errcode: Mapped[int] = mapped_column(Integer, default=0)


class WinBackOfferRow(Base):
    """One win-back offer: its coupon, the message to the customer and its outcome."""

    __tablename__ = "win_back_offers"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_win_back_offers_due", "status", "created_at"),
        Index("ix_win_back_offers_customer", "tenant_id", "customer_id", "created_at"),
        Index(
            "ix_win_back_offers_key_kept",
            "created_at",
            postgresql_where=text("idempotency_key IS NOT NULL"),
            sqlite_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(26))
    # winback:<customer>:<day>, one offer per customer and day: NULL once older than
    # CLOSEDLOOP_IDEMPOTENCY_KEY_RETENTION_S (its day is long over; sends use the offer's id).
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    coupon_id: Mapped[str] = mapped_column(String(26))
    value_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    valid_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    owner_rep_id: Mapped[str] = mapped_column(String(64), default="")
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    # scheduled | sending | sent | skipped | failed
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # When sending was claimed, then when it was handed over.
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    message_id: Mapped[str] = mapped_column(String(64), default="")
    delivery: Mapped[str] = mapped_column(String(16), default="")
    delivery_errcode: Mapped[int] = mapped_column(Integer, default=0)


class OptOutRow(Base):
    """A customer's withdrawn consent: one channel (a contact kind) or "all"."""

    __tablename__ = "opt_outs"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    # "rpc" or "link" (the unsubscribe link)
    source: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- the funnel read model (funnel/): one row per customer per step, at its first time ----------


class FunnelStepRow(Base):
    """A customer's first time at a TLSRRR step, with the customer's first attribution copied in
    so GetFunnel is one GROUP BY over this table."""

    __tablename__ = "funnel_steps"
    __table_args__ = (
        # GetFunnel without filters reads only this index (gap_s is in it for the medians).
        Index("ix_funnel_steps_tenant_at", "tenant_id", "at", "step", "gap_s"),
        Index("ix_funnel_steps_tenant_channel_at", "tenant_id", "channel_id", "at"),
        Index("ix_funnel_steps_tenant_campaign_at", "tenant_id", "campaign_id", "at"),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    step: Mapped[str] = mapped_column(String(16), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    campaign_id: Mapped[str] = mapped_column(String(64), default="")
    channel_id: Mapped[str] = mapped_column(String(64), default="")
    # Seconds since the customer reached the step before this one (funnel.views.MEDIAN_PAIRS),
    # when they did and it came first: the medians are then a scan of this table alone.
    gap_s: Mapped[float | None] = mapped_column(Float)


class FunnelDailyRow(Base):
    """funnel_steps counted per UTC day: the customers who reached `step` on `day`, for the
    whole tenant (dim "all", dim_id ""), per campaign (dim "campaign") and per channel (dim
    "channel"). Kept in the same transaction as the step rows (funnel/rollup.py), so GetFunnel
    adds up whole days here and reads only the partial edge days from funnel_steps."""

    __tablename__ = "funnel_daily"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dim: Mapped[str] = mapped_column(String(8), primary_key=True)
    dim_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    step: Mapped[str] = mapped_column(String(16), primary_key=True)
    customers: Mapped[int] = mapped_column(Integer, default=0)


class FunnelGapBucketRow(Base):
    """The gaps (funnel_steps.gap_s) of the rows counted in funnel_daily, as a histogram over
    log-scale buckets (funnel_gap_bounds): how many, and their sum (a bucket's mean stands for
    its values, so a median is exact when its bucket holds one value, else within ~2 %)."""

    __tablename__ = "funnel_gap_buckets"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dim: Mapped[str] = mapped_column(String(8), primary_key=True)
    dim_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    step: Mapped[str] = mapped_column(String(16), primary_key=True)
    bucket: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)
    sum_s: Mapped[float] = mapped_column(Float, default=0.0)


class FunnelGapBoundRow(Base):
    """Bucket `bucket` of the gap histograms holds the gaps from `lo_ms` milliseconds up to the
    next bucket's (funnel.rollup.GAP_BOUNDS_MS; written by migration 0013, never changed), so
    SQL and Python put a gap in the same bucket with exact comparisons."""

    __tablename__ = "funnel_gap_bounds"

    # Whole milliseconds, stored as a double: compared with `gap_s * 1000.0` as it is (exact,
    # and the primary key's index finds the bucket).
    lo_ms: Mapped[float] = mapped_column(Float, primary_key=True, autoincrement=False)
    bucket: Mapped[int] = mapped_column(SmallInteger)


class FunnelOrderRow(Base):
    """A paid order (orders and paying customers are separate figures; repeat = the 2nd order)."""

    __tablename__ = "funnel_orders"
    __table_args__ = (
        Index("ix_funnel_orders_customer", "tenant_id", "customer_id", "paid_at"),
        Index("ix_funnel_orders_tenant_paid", "tenant_id", "paid_at"),
    )

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(26))
    paid_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    campaign_id: Mapped[str] = mapped_column(String(64), default="")
    channel_id: Mapped[str] = mapped_column(String(64), default="")


class FunnelSourceRow(Base):
    """Where a customer came from: the campaign and channel of their earliest touch or lead."""

    __tablename__ = "funnel_sources"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    campaign_id: Mapped[str] = mapped_column(String(64), default="")
    channel_id: Mapped[str] = mapped_column(String(64), default="")


class FunnelAliasRow(Base):
    """Customers merged away (→ survivor) and forgotten (survivor ""), so an event of theirs
    replayed or arriving late lands on the survivor, or nowhere."""

    __tablename__ = "funnel_aliases"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    survivor_id: Mapped[str] = mapped_column(String(26), default="")


class FunnelMergeRow(Base):
    """What a merge changed in the funnel, so `customer.unmerged` naming it can give it back:
    the merged customer's steps and attribution as they were, the orders it moved, and the
    survivor's steps and attribution before the merged ones were folded in. Dropped by the
    unmerge, and with either customer's erasure."""

    __tablename__ = "funnel_merges"
    __table_args__ = (Index("ix_funnel_merges_customers", "tenant_id", "merged_id", "survivor_id"),)

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    merge_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    merged_id: Mapped[str] = mapped_column(String(26))
    survivor_id: Mapped[str] = mapped_column(String(26))
    # {"steps": {step: [at, campaign, channel]}, "source": [at, campaign, channel] | null,
    #  "orders": [order_id], "survivor_steps": {step: at | null} (the steps the merge set),
    #  "survivor_source": [at, campaign, channel] | null | "kept"}; times ISO 8601 UTC.
    undo: Mapped[dict[str, Any]] = mapped_column(JSON)


class RewardRevocationRow(Base):
    """A referral reward taken back (reward.revoked after its grant), once per reward: what was
    reversed, and a marker so a reward.granted handled after its revocation hands nothing out.
    Pseudonymous ids only (no customer column): kept through merges and erasures."""

    __tablename__ = "reward_revocations"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reward_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    # points | coupon | none (nothing had been handed out yet)
    kind: Mapped[str] = mapped_column(String(16))
    points_taken: Mapped[int] = mapped_column(BigInteger)
    # Points already spent when the reward was taken back: written off, never a negative balance.
    points_written_off: Mapped[int] = mapped_column(BigInteger)
    coupon_id: Mapped[str] = mapped_column(String(26))
    # disabled | already_redeemed | "" (no coupon)
    coupon_outcome: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FissionRewardRow(Base):
    """A fission goal's reward, once per (campaign, participant)."""

    __tablename__ = "fission_rewards"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    participant_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    # points | coupon | manual (a reward handed over by people: the customer is only told)
    kind: Mapped[str] = mapped_column(String(16))
    points: Mapped[int] = mapped_column(BigInteger)
    coupon_id: Mapped[str] = mapped_column(String(26))
    reward_text: Mapped[str] = mapped_column(String(500))
    invited: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[str] = mapped_column(String(64))
    reached_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NoticeRow(Base):
    """A message owed to one customer (a fission reward's notice), sent by the notice worker
    through the gateway under its idempotency key; consent is checked again when it goes out."""

    __tablename__ = "customer_notices"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_customer_notices_status", "status", "created_at"),
        Index(
            "ix_customer_notices_key_kept",
            "created_at",
            postgresql_where=text("idempotency_key IS NOT NULL"),
            sqlite_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(26))
    kind: Mapped[str] = mapped_column(String(32))
    content: Mapped[str] = mapped_column(String(1000))
    # The notice's key, also its send's key at the gateway: NULL once the notice is finished
    # (sent, skipped, failed) and older than CLOSEDLOOP_IDEMPOTENCY_KEY_RETENTION_S (a fission
    # reward's notice is owed once: fission_rewards' row keeps that).
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # pending | sending | sent | skipped | failed
    status: Mapped[str] = mapped_column(String(16))
    # why skipped / failed: unsubscribed, no_consent, no_contact, refused
    reason: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# --- the customer 360 read model (customer360/): what GetCustomer360 shows beside activity ---


class C360LeadRow(Base):
    """A lead of a customer with its attribution and the rep it was last assigned to."""

    __tablename__ = "c360_leads"
    __table_args__ = (Index("ix_c360_leads_customer", "tenant_id", "customer_id"),)

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    lead_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(26))
    campaign_id: Mapped[str] = mapped_column(String(64), default="")
    channel_id: Mapped[str] = mapped_column(String(64), default="")
    channel_kind: Mapped[str] = mapped_column(String(32), default="")
    referrer_customer_id: Mapped[str] = mapped_column(String(26), default="")
    referral_code: Mapped[str] = mapped_column(String(64), default="")
    # None until lead.captured arrives (a lead.assigned can come first)
    captured_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rep_id: Mapped[str] = mapped_column(String(64), default="")
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class C360FollowUpRow(Base):
    """A follow-up a rep logged with the customer."""

    __tablename__ = "c360_followups"
    __table_args__ = (Index("ix_c360_followups_customer", "tenant_id", "customer_id", "at"),)

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    follow_up_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(26))
    lead_id: Mapped[str] = mapped_column(String(64), default="")
    rep_id: Mapped[str] = mapped_column(String(64), default="")
    kind: Mapped[str] = mapped_column(String(32), default="")
    inbound: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class C360OrderRow(Base):
    """A paid order as the customer's 360 shows it (currency, rep and lead included)."""

    __tablename__ = "c360_orders"
    __table_args__ = (Index("ix_c360_orders_customer", "tenant_id", "customer_id", "paid_at"),)

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(26))
    rep_id: Mapped[str] = mapped_column(String(64), default="")
    lead_id: Mapped[str] = mapped_column(String(64), default="")
    currency: Mapped[str] = mapped_column(String(3), default="")
    amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    fully_refunded: Mapped[bool] = mapped_column(Boolean, default=False)
    paid_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class C360ReferralRow(Base):
    """Who referred a newcomer (their lead's attribution, or referral's conversion)."""

    __tablename__ = "c360_referrals"
    __table_args__ = (Index("ix_c360_referrals_referrer", "tenant_id", "referrer_id"),)

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    newcomer_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    referrer_id: Mapped[str] = mapped_column(String(26), default="")
    code: Mapped[str] = mapped_column(String(64), default="")
    referred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    referral_id: Mapped[str] = mapped_column(String(64), default="")
    converted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class C360RewardRow(Base):
    """A referral reward granted to the customer (and taken back, when it was)."""

    __tablename__ = "c360_rewards"
    __table_args__ = (Index("ix_c360_rewards_customer", "tenant_id", "customer_id"),)

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reward_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(26))
    referral_id: Mapped[str] = mapped_column(String(64), default="")
    kind: Mapped[str] = mapped_column(String(16), default="")
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    coupon_template_id: Mapped[str] = mapped_column(String(64), default="")
    level: Mapped[int] = mapped_column(Integer, default=0)
    granted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class C360EventRow(Base):
    """One entry of a customer's timeline: an event of theirs, summarised without personal data.
    `entry_key` is the event's natural key (order.paid:<order>) or its id, so a replay or a second
    envelope of the same fact adds nothing."""

    __tablename__ = "c360_timeline"
    __table_args__ = (Index("ix_c360_timeline_customer", "tenant_id", "customer_id", "at"),)

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    entry_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(26))
    kind: Mapped[str] = mapped_column(String(48))
    service: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    summary: Mapped[str] = mapped_column(String(300), default="")
    # What the entry is about (lead, order, follow-up, share code, reward id)
    ref: Mapped[str] = mapped_column(String(64), default="")


class C360ForgottenRow(Base):
    """A customer the 360 erased (customer.forgotten): an event of theirs arriving late or
    replayed adds nothing, and one naming them as referrer keeps the referral but not who made
    it. Only the id (a random ULID identity gave), as identity and the funnel keep it."""

    __tablename__ = "c360_forgotten"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    forgotten_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CustomerAliasRow(Base):
    """A merged-away customer id and the survivor that holds its rows now: events still naming
    the merged id (an order paid after the merge) land on the survivor. Dropped on unmerge."""

    __tablename__ = "customer_aliases"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    survivor_id: Mapped[str] = mapped_column(String(26))
    merge_id: Mapped[str] = mapped_column(String(64))
