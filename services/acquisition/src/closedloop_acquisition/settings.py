"""Settings of the acquisition service: the shared ones plus the official accounts it serves."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator

from loopkit.settings import Settings


class WechatApp(BaseModel):
    """One official account whose server callback this service answers."""

    app_id: str = Field(min_length=1, max_length=64)
    tenant_id: str = Field(min_length=1, max_length=64)
    # Secrets: SecretStr keeps them out of logs and reprs.
    token: SecretStr
    # The 43-character EncodingAESKey; empty for an account in plaintext mode.
    aes_key: SecretStr = SecretStr("")

    @field_validator("token")
    @classmethod
    def _token_given(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("token is required")
        return value

    @field_validator("aes_key")
    @classmethod
    def _aes_key_shape(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value() and len(value.get_secret_value()) != 43:
            raise ValueError("EncodingAESKey must be 43 characters")
        return value


class AcquisitionSettings(Settings):
    # CLOSEDLOOP_ACQUISITION_WECHAT_APPS='[{"app_id": ..., "tenant_id": ..., "token": ...}]'
    wechat_apps: list[WechatApp] = Field(default_factory=list)
    # How often the callback worker looks for stored messages when nobody woke it, in seconds.
    wechat_worker_poll_s: float = 1.0

    @field_validator("wechat_apps", mode="before")
    @classmethod
    def _json_list(cls, value: Any) -> Any:
        # Per-service variables arrive as raw strings (shared ones are decoded by pydantic).
        if isinstance(value, str):
            return json.loads(value) if value.strip() else []
        return value
