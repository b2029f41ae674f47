"""The gateway's tables (its own database; no other service reads them). No app secret is
stored anywhere; access tokens are kept encrypted with a key derived from their app's secret."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from loopkit.db import new_metadata
from loopkit.tables import customer_moves_table, kit_tables


class Base(DeclarativeBase):
    metadata = new_metadata()


kit = kit_tables(Base.metadata)
# What each merge moved, so an unmerge gives it back (loopkit.customer_rows).
customer_moves = customer_moves_table(Base.metadata)


class AccessTokenRow(Base):
    """One row per app or corp: its current access token and the refresh lease.

    A replica refreshes only while it holds the lease (`lease_holder` until `lease_until`), taken
    by a conditional UPDATE that also names the `generation` it saw: whoever finds the generation
    moved on adopts the new token instead of fetching another (a new token invalidates the old).
    """

    __tablename__ = "access_tokens"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Fernet ciphertext of the token ("" = none yet).
    token_cipher: Mapped[str] = mapped_column(Text)
    generation: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_holder: Mapped[str] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class QuotaUsageRow(Base):
    """Calls of one API by one account on one WeChat day (China time), and its pause if any."""

    __tablename__ = "quota_usage"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    api: Mapped[str] = mapped_column(String(100), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    used: Mapped[int] = mapped_column(Integer)
    paused_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paused_errcode: Mapped[int] = mapped_column(Integer)
    paused_errmsg: Mapped[str] = mapped_column(String(300))


class SendRow(Base):
    """A durable send command: stored once per idempotency key, executed by the send worker."""

    __tablename__ = "sends"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_sends_due", "status", "next_attempt_at"),
        # The sends whose key has not expired yet (the key sweep's way in).
        Index(
            "ix_sends_key_kept",
            "created_at",
            postgresql_where=text("idempotency_key IS NOT NULL"),
            sqlite_where=text("idempotency_key IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    # NULL once a finished send is older than CLOSEDLOOP_IDEMPOTENCY_KEY_RETENTION_S: the same
    # key is then a new send (loopkit.expiry).
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    # official_account_text | official_account_template | wecom_welcome | wecom_msg_template
    kind: Mapped[str] = mapped_column(String(40))
    account_id: Mapped[str] = mapped_column(String(64))
    # What to send (recipient, text, template data): the request's message.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # sha256 of kind + account + payload: the same key with another message is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # queued | sending | sent | failed | paused
    status: Mapped[str] = mapped_column(String(16))
    errcode: Mapped[int] = mapped_column(Integer)
    errmsg: Mapped[str] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer)
    wechat_msgid: Mapped[str] = mapped_column(String(64))
    # The replica executing it (status sending) and until when that claim holds.
    lease_holder: Mapped[str] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When WeChat was last asked (start of the in-doubt window of a crash).
    called_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class InteractionRow(Base):
    """The last time a follower interacted with an official account (the 48-hour window).

    `subject` is `openid:<openid>` or `customer:<customer id>`: acquisition's touches carry the
    openid, its interaction events only the customer. `customer_id` names the customer of an
    openid row when the touch knew it, so forgetting the customer finds that openid too.
    """

    __tablename__ = "interactions"
    __table_args__ = (Index("ix_interactions_customer", "tenant_id", "customer_id"),)

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    app_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    customer_id: Mapped[str] = mapped_column(String(64), default="", server_default="")


class TransferRequestRow(Base):
    """One TransferCustomers request, by its idempotency key: WeCom is asked once per key and a
    retry gets the stored answer (a transfer asked twice is refused by WeCom for each customer).

    `calling` with `lease_until` in the past is in doubt (the asking replica stopped or WeCom did
    not answer): the next retry reads WeCom's transfer_result before asking again.
    """

    __tablename__ = "transfer_requests"
    __table_args__ = (Index("ix_transfer_requests_created", "created_at"),)

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    # sha256 of corp, reps, mode, customers and message: the same key for another request is
    # refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # calling | done
    status: Mapped[str] = mapped_column(String(16))
    # Once done: WeCom's errcode per external_userid.
    answer: Mapped[dict[str, int]] = mapped_column(JSON)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReplicaRow(Base):
    """A live gateway replica: each paces WeChat calls at its share (1 / the live replicas) of
    every per-second limit, so together they stay under the limit (quotas/pace_share.py)."""

    __tablename__ = "gateway_replicas"

    replica_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    # Renewed every `pace_heartbeat_s`; a replica not seen until then is gone.
    seen_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
