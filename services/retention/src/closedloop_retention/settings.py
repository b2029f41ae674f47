"""The retention service's own settings (CLOSEDLOOP_RETENTION_<FIELD>)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from closedloop_retention.winback.message import DEFAULT_TEXT
from loopkit.settings import Settings


class RetentionSettings(Settings):
    # The periodic lifecycle sweep and RFM recomputation; 0 turns it off.
    sweep_interval_s: float = 3600.0
    # How often due broadcast messages are handed to the sender; 0 turns sending off.
    dispatch_interval_s: float = 1.0
    # Messages handed to the sender per dispatch tick (pacing is planned per broadcast too).
    dispatch_batch: int = 200
    # Broadcast recipients claimed and handed to the gateway in one SendMessages call (1-500):
    # a broadcast to N recipients due at once is ceil(N / page) calls, not N.
    broadcast_page_size: int = Field(default=500, ge=1, le=500)
    # The gateway (host:port of its gRPC API). Set: broadcasts go out through it to WeChat / WeCom
    # (each message a durable send under its key; the outcome comes as message.sent / .failed).
    # Empty: the sandbox sender records them instead.
    gateway_url: str = ""
    # Per-call deadline for calls to the gateway, in seconds.
    gateway_timeout_s: float = 5.0
    # The sandbox sender's JSON-lines log under state_dir ("" = in memory only).
    sandbox_log: str = "retention-sent.jsonl"
    # Win-back offers: the text (placeholders {value} yuan, {valid_until}, {coupon_id},
    # {unsubscribe_url}) and the official-account template used outside WeChat's 48-hour
    # customer-service window ("" = outside the window the offer is not sent: window_closed).
    win_back_text: str = DEFAULT_TEXT
    win_back_template_id: str = ""
    # Where this service's HTTP edge is reachable from a customer's phone (or the shared
    # CLOSEDLOOP_PUBLIC_BASE_URL the chart sets): unsubscribe links are {base}/u/{token}. Empty:
    # this server's own address (local runs).
    public_base_url: str = ""
    # Signs unsubscribe tokens (HMAC-SHA256). Every replica needs the same one; empty: a random
    # secret per process (links stop working after a restart; fine for a laptop, not production).
    unsubscribe_secret: SecretStr = SecretStr("")
    # The per-tenant funnel gauges on /metrics (closedloop_funnel_customers{tenant, step}): how
    # often they are recomputed from the funnel read model (0 turns them off), over what trailing
    # window of days, and for at most how many tenants (the busiest in the window; the label's
    # cardinality is this times the eight steps).
    funnel_metrics_interval_s: float = 60.0
    funnel_metrics_window_days: int = Field(default=30, ge=1, le=400)
    funnel_metrics_max_tenants: int = Field(default=100, ge=1, le=10_000)
