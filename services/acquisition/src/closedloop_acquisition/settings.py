"""Settings of the acquisition service: the shared ones and the account registry, plus its own."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from loopkit.accounts import AccountSettings


class AcquisitionSettings(AccountSettings):
    # `accounts` / `accounts_file` (AccountSettings): the shared account registry; the callback
    # token, EncodingAESKey and tenant of each official account come from it.
    retired = {"wechat_apps": "CLOSEDLOOP_ACCOUNTS (the official accounts' token and aes_key)"}
    # How often the callback worker looks for stored messages when nobody woke it, in seconds.
    wechat_worker_poll_s: float = 1.0
    # The gateway service (host:port) that talks to WeChat. Empty: channels get no codes and
    # pages are served without WeChat sign-in.
    gateway_url: str = ""
    # Per-call deadline for calls to the gateway, in seconds.
    gateway_timeout_s: float = 5.0
    # How often ended contact-me channels (expiry or campaign end passed) have their code
    # removed at WeCom through the gateway; 0 turns it off.
    contact_way_release_interval_s: float = 60.0
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
