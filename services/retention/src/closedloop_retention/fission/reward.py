"""What a fission campaign's reward text means (pure): `points:<n>` and
`coupon:<template>[:<valid days>]` are granted by retention; any other text is a reward people
hand over (the customer is told what it is)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_POINTS = 10_000_000
DEFAULT_COUPON_DAYS = 30


@dataclass(frozen=True)
class FissionReward:
    kind: str  # points | coupon | manual
    points: int = 0
    coupon_template_id: str = ""
    coupon_valid_days: int = DEFAULT_COUPON_DAYS
    text: str = ""


def parse_reward(text: str) -> FissionReward:
    text = text.strip()
    kind, _, rest = text.partition(":")
    kind = kind.strip().lower()
    if kind == "points" and rest.strip().isdigit() and 0 < int(rest) <= MAX_POINTS:
        return FissionReward("points", points=int(rest), text=text)
    if kind == "coupon":
        template, _, days = rest.strip().partition(":")
        template, days = template.strip(), days.strip()
        valid_days = int(days) if days.isdigit() else DEFAULT_COUPON_DAYS
        if 0 < len(template) <= 64 and 1 <= valid_days <= 3650 and (not days or days.isdigit()):
            return FissionReward(
                "coupon", coupon_template_id=template, coupon_valid_days=valid_days, text=text
            )
    return FissionReward("manual", text=text)


def notice_text(reward: FissionReward, invited: int) -> str:
    """What the customer is told (no personal data: the notice row outlives an erasure)."""
    done = f"You brought {invited} friends and reached the goal."
    if reward.kind == "points":
        return f"{done} {reward.points} points are now in your account."
    if reward.kind == "coupon":
        return (
            f"{done} A coupon is waiting in your account (valid {reward.coupon_valid_days} days)."
        )
    if reward.text:
        return f"{done} Your reward: {reward.text}. We will be in touch to hand it over."
    return f"{done} Thank you!"
