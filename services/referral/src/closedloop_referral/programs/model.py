"""What a program says, as plain values the domain checks and the transport fills."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from loopkit.errors import InvalidArgument

REWARD_KINDS = ("points", "coupon", "cash")
TRIGGERS = ("lead", "first_paid_order", "order_above_amount")
TARGETS = ("moment", "chat", "group")
DEFAULT_ATTRIBUTION_WINDOW_S = 30 * 86400
MAX_HOLD_S = 366 * 86400


@dataclass(frozen=True)
class RewardSpec:
    kind: str  # "" = none
    points: int = 0
    coupon_template_id: str = ""
    cash_minor: int = 0

    def check(self, field: str, *, required: bool) -> None:
        if not self.kind:
            if required:
                raise InvalidArgument("a reward kind is required", field=f"{field}.kind")
            return
        if self.kind not in REWARD_KINDS:
            raise InvalidArgument(f"unknown reward kind {self.kind!r}", field=f"{field}.kind")
        if self.kind == "points" and not 0 < self.points <= 10_000_000:
            raise InvalidArgument("points must be 1..10000000", field=f"{field}.points")
        if self.kind == "coupon" and not self.coupon_template_id:
            raise InvalidArgument(
                "a coupon reward needs a template", field=f"{field}.coupon_template_id"
            )
        if self.kind == "cash" and not 0 < self.cash_minor <= 100_000_000:
            raise InvalidArgument("cash must be positive", field=f"{field}.cash")


@dataclass(frozen=True)
class ProgramSpec:
    tenant_id: str
    name: str
    referrer_reward: RewardSpec
    trigger: str
    min_order_minor: int
    currency: str
    newcomer_reward: RewardSpec
    cap_per_period: int
    cap_period_days: int
    levels: int
    level2_percent: int
    hold_seconds: int
    attribution_window_seconds: int
    channel_id: str
    campaign_id: str
    landing_url: str
    starts_at: datetime | None
    ends_at: datetime | None

    def check(self) -> None:
        if not self.name.strip() or len(self.name) > 200:
            raise InvalidArgument("a name of 1..200 characters is required", field="name")
        self.referrer_reward.check("referrer_reward", required=True)
        self.newcomer_reward.check("newcomer_reward", required=False)
        if self.trigger not in TRIGGERS:
            raise InvalidArgument("a trigger is required", field="trigger")
        if self.trigger == "order_above_amount" and self.min_order_minor <= 0:
            raise InvalidArgument(
                "an order-above-amount trigger needs a positive amount", field="min_order_amount"
            )
        if self.min_order_minor < 0:
            raise InvalidArgument("must not be negative", field="min_order_amount")
        if self.currency and (len(self.currency) != 3 or not self.currency.isalpha()):
            raise InvalidArgument("an ISO 4217 code is required", field="currency")
        if self.cap_per_period < 0 or self.cap_period_days < 0:
            raise InvalidArgument("caps must not be negative", field="cap_per_period")
        if self.cap_per_period and not self.cap_period_days:
            raise InvalidArgument("a cap needs a period in days", field="cap_period_days")
        if self.levels not in (1, 2):
            raise InvalidArgument("levels must be 1 or 2", field="levels")
        if self.levels == 2 and not 0 < self.level2_percent < 100:
            raise InvalidArgument(
                "the second level gets 1..99 % of the first", field="level2_percent"
            )
        if not 0 <= self.hold_seconds <= MAX_HOLD_S:
            raise InvalidArgument("the hold must be 0..366 days", field="hold_seconds")
        if not 0 < self.attribution_window_seconds <= MAX_HOLD_S:
            raise InvalidArgument(
                "the attribution window must be 1 s..366 days", field="attribution_window_seconds"
            )
        if not self.channel_id or len(self.channel_id) > 64:
            raise InvalidArgument("the referral channel id is required", field="channel_id")
        if len(self.campaign_id) > 64:
            raise InvalidArgument("too long", field="campaign_id")
        url = urlsplit(self.landing_url)
        if url.scheme not in ("http", "https") or not url.netloc or len(self.landing_url) > 1000:
            raise InvalidArgument("an http(s) landing page URL is required", field="landing_url")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise InvalidArgument("the program must end after it starts", field="ends_at")
