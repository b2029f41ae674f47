"""Settings of the referral service: the shared ones plus its own."""

from __future__ import annotations

from loopkit.settings import Settings


class ReferralSettings(Settings):
    # The public base of share links (CLOSEDLOOP_REFERRAL_PUBLIC_BASE_URL); empty = this server.
    public_base_url: str = ""
    # How often the sweep grants rewards whose hold ended, in seconds.
    sweep_interval_s: float = 30.0
    # Fraud: more than `burst_threshold` newcomers from one referrer within the window are held.
    burst_window_s: int = 600
    burst_threshold: int = 5
