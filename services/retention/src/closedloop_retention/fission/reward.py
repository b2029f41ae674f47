"""What retention tells a customer whose fission goal is reached (pure). The reward text's
grammar (`points:<n>`, `coupon:<template>[:<valid days>]`, else a reward people hand over) is
`loopkit.fission_reward`'s, shared with acquisition, which refuses a malformed one."""

from __future__ import annotations

from loopkit.fission_reward import FissionReward, parse_reward

__all__ = ["FissionReward", "notice_text", "parse_reward"]


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
