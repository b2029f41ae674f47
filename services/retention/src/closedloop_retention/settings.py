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
    # The sandbox sender's JSON-lines log under state_dir ("" = in memory only).
    sandbox_log: str = "retention-sent.jsonl"
