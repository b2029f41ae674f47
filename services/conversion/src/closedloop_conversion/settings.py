"""The conversion service's own settings (beside the shared ones)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, field_validator

from loopkit.settings import Settings


class WecomCorp(BaseModel):
    """One WeCom corp whose contact callbacks this service receives, and the tenant it serves."""

    corp_id: str
    tenant_id: str
    token: SecretStr
    aes_key: SecretStr

    @field_validator("aes_key")
    @classmethod
    def _key_length(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) != 43:
            raise ValueError("the EncodingAESKey is 43 characters")
        return value


class ConversionSettings(Settings):
    # CLOSEDLOOP_CONVERSION_WECOM_CORPS='[{"corp_id": ..., "tenant_id": ..., "token": ...,
    # "aes_key": ...}]'
    wecom_corps: list[WecomCorp] = []
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
    # How often the sweeper reads WeCom's transfer results (and asks about transfers not asked).
    transfer_sweep_interval_s: float = 60.0

    @field_validator("wecom_corps", mode="before")
    @classmethod
    def _json_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else []
        return value

    def corp(self, corp_id: str) -> WecomCorp | None:
        return next((c for c in self.wecom_corps if c.corp_id == corp_id), None)
