"""The conversion service's own settings (beside the shared ones)."""

from __future__ import annotations

from pathlib import Path

from loopkit.accounts import AccountSettings


class ConversionSettings(AccountSettings):
    # `accounts` / `accounts_file` (AccountSettings): the shared account registry; the callback
    # token, EncodingAESKey and tenant of each WeCom corp come from it.
    retired = {"wecom_corps": "CLOSEDLOOP_ACCOUNTS (the WeCom corps' token and aes_key)"}
    # The gateway (host:port of its gRPC API). Set: welcome messages, contact lookups and transfers
    # go through it to WeCom. Empty: nothing leaves the building (SandboxSender; transfers are
    # assumed done after transfer_auto_takeover_s).
    gateway_url: str = ""
    # Per-call deadline for calls to the gateway, in seconds.
    gateway_timeout_s: float = 5.0
    # The sandbox sender's JSON-lines record of outbound messages, under state_dir unless
    # absolute; "" = in memory only (what the Helm chart sets: a pod has no place for a file that
    # grows with every message).
    sandbox_log: str | Path = "conversion-sent.jsonl"
    # Without a gateway: WeCom completes a pending transfer by itself after 24 h, and the sweeper
    # assumes it did. With one, WeCom's own answer (transfer_result) is read back instead.
    transfer_auto_takeover_s: float = 24 * 3600
    # How often due rep notices (a new task, a lead assigned) are handed to the gateway; a commit
    # that stores one wakes the worker at once.
    rep_notice_interval_s: float = 5.0
    # How often the sweeper reads WeCom's transfer results (and asks about transfers not asked).
    transfer_sweep_interval_s: float = 60.0
