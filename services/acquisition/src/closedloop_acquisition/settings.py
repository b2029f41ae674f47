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
    # The gateway service (host:port) that talks to WeChat. Empty: channels get no codes and
    # pages are served without WeChat sign-in.
    gateway_url: str = ""
    # Per-call deadline for calls to the gateway, in seconds.
    gateway_timeout_s: float = 5.0
    # Where browsers reach this service (https://h5.example.com), for the sign-in's return
    # address; empty = the address the request came to.
    public_url: str = ""
    # Signs the sign-in cookies (at least 16 characters; every replica needs the same one).
    # Empty: a random one per process, so sessions end with a restart.
    session_secret: SecretStr = SecretStr("")
    # How long a WeChat sign-in is trusted by the page's form, in seconds.
    session_ttl_s: int = Field(default=1800, ge=60, le=86400)

    @field_validator("session_secret")
    @classmethod
    def _secret_length(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value() and len(value.get_secret_value()) < 16:
            raise ValueError("session_secret needs at least 16 characters")
        return value

    @field_validator("wechat_apps", mode="before")
    @classmethod
    def _json_list(cls, value: Any) -> Any:
        # Per-service variables arrive as raw strings (shared ones are decoded by pydantic).
        if isinstance(value, str):
            return json.loads(value) if value.strip() else []
        return value
