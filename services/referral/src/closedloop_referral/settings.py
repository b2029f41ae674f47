"""Settings of the referral service: the shared ones plus its own."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import model_validator

from loopkit.settings import WILDCARD_HOSTS, Settings


class ReferralSettings(Settings):
    # The public origin of share links (CLOSEDLOOP_REFERRAL_PUBLIC_BASE_URL, or the shared
    # CLOSEDLOOP_PUBLIC_BASE_URL the Helm chart sets), e.g. https://wx.example.com: links are
    # <base>/r/<code>. Empty is only allowed on a specific bind
    # address (local runs: the links then point at this server); a server bound to every address
    # (0.0.0.0, as in a pod) refuses to start without it rather than hand out 0.0.0.0 links.
    public_base_url: str = ""
    # How often the sweep grants rewards whose hold ended, in seconds.
    sweep_interval_s: float = 30.0
    # Fraud: more than `burst_threshold` newcomers from one referrer within the window are held.
    burst_window_s: int = 600
    burst_threshold: int = 5

    @model_validator(mode="after")
    def _public_base_url(self) -> ReferralSettings:
        if not self.public_base_url:
            if self.http_host in WILDCARD_HOSTS:
                raise ValueError(
                    "CLOSEDLOOP_REFERRAL_PUBLIC_BASE_URL is required (or the shared "
                    "CLOSEDLOOP_PUBLIC_BASE_URL; the chart's publicBaseUrl) when the HTTP server "
                    f"binds every address ({self.http_host or 'empty host'}): share links would "
                    "point at it; set the public origin, e.g. https://wx.example.com"
                )
            return self
        parts = urlsplit(self.public_base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "CLOSEDLOOP_REFERRAL_PUBLIC_BASE_URL must be an http(s) URL with a host, e.g. "
                f"https://wx.example.com (got {self.public_base_url!r})"
            )
        if parts.hostname in WILDCARD_HOSTS:
            raise ValueError(
                f"CLOSEDLOOP_REFERRAL_PUBLIC_BASE_URL points at {parts.hostname}, a bind "
                "address no browser can open; set the public origin"
            )
        return self
