"""The retention service's own settings (CLOSEDLOOP_RETENTION_<FIELD>)."""

from __future__ import annotations

from loopkit.settings import Settings


class RetentionSettings(Settings):
    # The periodic lifecycle sweep and RFM recomputation; 0 turns it off.
    sweep_interval_s: float = 3600.0
    # How often due broadcast messages are handed to the sender; 0 turns sending off.
    dispatch_interval_s: float = 1.0
    # Messages handed to the sender per dispatch tick (pacing is planned per broadcast too).
    dispatch_batch: int = 200
    # The gateway (host:port of its gRPC API). Set: broadcasts go out through it to WeChat / WeCom
    # (each message a durable send under its key; the outcome comes as message.sent / .failed).
    # Empty: the sandbox sender records them instead.
    gateway_url: str = ""
    # Per-call deadline for calls to the gateway, in seconds.
    gateway_timeout_s: float = 5.0
    # The sandbox sender's JSON-lines log under state_dir ("" = in memory only).
    sandbox_log: str = "retention-sent.jsonl"
