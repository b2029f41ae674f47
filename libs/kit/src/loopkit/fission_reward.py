"""What a fission campaign's reward text means (pure), shared by acquisition (which refuses a
malformed one when a campaign is created) and retention (which grants it).

`points:<n>` (1 to 10,000,000 points) and `coupon:<template>[:<valid days>]` (a template id of
1 to 64 characters, 1 to 3650 days, 30 by default) are granted by retention; any other text is a
reward people hand over (the customer is told what it is)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_POINTS = 10_000_000
DEFAULT_COUPON_DAYS = 30
MAX_COUPON_DAYS = 3650
MAX_TEMPLATE_LENGTH = 64
GRANTED_KINDS = ("points", "coupon")


@dataclass(frozen=True)
class FissionReward:
    kind: str  # points | coupon | manual
    points: int = 0
    coupon_template_id: str = ""
    coupon_valid_days: int = DEFAULT_COUPON_DAYS
    text: str = ""


def reward_problem(text: str) -> str | None:
    """Why a text that names a granted kind (`points:` / `coupon:`) is not one, else None
    (a well-formed one, or a text reward handed over by people)."""
    kind, colon, rest = text.strip().partition(":")
    kind = kind.strip().lower()
    if not colon or kind not in GRANTED_KINDS:
        return None
    if kind == "points":
        amount = rest.strip()
        if not amount.isdigit() or not 0 < int(amount) <= MAX_POINTS:
            return f"points:<n> needs a whole number of points from 1 to {MAX_POINTS:,}"
        return None
    template, _, days = rest.strip().partition(":")
    template, days = template.strip(), days.strip()
    if not 0 < len(template) <= MAX_TEMPLATE_LENGTH:
        return (
            f"coupon:<template>[:<days>] needs a template id of 1 to {MAX_TEMPLATE_LENGTH} "
            "characters"
        )
    if days and (not days.isdigit() or not 1 <= int(days) <= MAX_COUPON_DAYS):
        return f"coupon:<template>:<days> needs 1 to {MAX_COUPON_DAYS} days"
    return None


def parse_reward(text: str) -> FissionReward:
    """The reward a text stands for; a malformed `points:` / `coupon:` (stored before
    acquisition checked them) is a text reward, handed over by people."""
    text = text.strip()
    if reward_problem(text) is not None:
        return FissionReward("manual", text=text)
    kind, colon, rest = text.partition(":")
    kind = kind.strip().lower()
    if colon and kind == "points":
        return FissionReward("points", points=int(rest.strip()), text=text)
    if colon and kind == "coupon":
        template, _, days = rest.strip().partition(":")
        valid_days = int(days.strip()) if days.strip() else DEFAULT_COUPON_DAYS
        return FissionReward(
            "coupon",
            coupon_template_id=template.strip(),
            coupon_valid_days=valid_days,
            text=text,
        )
    return FissionReward("manual", text=text)
