"""What a campaign's fission_reward text grants (pure)."""

from __future__ import annotations

import pytest

from closedloop_retention.fission.reward import FissionReward, notice_text, parse_reward


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("points:300", FissionReward("points", points=300, text="points:300")),
        (" Points: 50 ", FissionReward("points", points=50, text="Points: 50")),
        (
            "coupon:tpl-10",
            FissionReward("coupon", coupon_template_id="tpl-10", text="coupon:tpl-10"),
        ),
        (
            "coupon:tpl-10:7",
            FissionReward(
                "coupon", coupon_template_id="tpl-10", coupon_valid_days=7, text="coupon:tpl-10:7"
            ),
        ),
        ("points:0", FissionReward("manual", text="points:0")),
        ("points:lots", FissionReward("manual", text="points:lots")),
        ("coupon:", FissionReward("manual", text="coupon:")),
        ("coupon:tpl:0", FissionReward("manual", text="coupon:tpl:0")),
        ("coupon:tpl:soon", FissionReward("manual", text="coupon:tpl:soon")),
        ("A mug", FissionReward("manual", text="A mug")),
        ("", FissionReward("manual")),
    ],
)
def test_reward_text(text: str, expected: FissionReward) -> None:
    assert parse_reward(text) == expected


def test_the_message_names_what_was_granted() -> None:
    assert "300 points" in notice_text(parse_reward("points:300"), 3)
    assert "valid 7 days" in notice_text(parse_reward("coupon:t:7"), 3)
    assert "Your reward: A mug" in notice_text(parse_reward("A mug"), 3)
    assert (
        notice_text(parse_reward(""), 2) == "You brought 2 friends and reached the goal. Thank you!"
    )
