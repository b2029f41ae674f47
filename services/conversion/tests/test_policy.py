"""The pure rules choosing a rep (no I/O): availability, turns, load, matches, working hours."""

from __future__ import annotations

from datetime import UTC, datetime

from closedloop_conversion.sales.policy import Candidate, Rule, choose, choose_owner, on_duty

HOURS = {
    "weekdays": [1, 2, 3, 4, 5],
    "start": "09:00",
    "end": "18:00",
    "time_zone": "Asia/Shanghai",
}


def rep(rep_id: str, *, cap: int = 10, load: int = 0, seq: int = 0, **kw: object) -> Candidate:
    return Candidate(rep_id, cap, load, seq, kw.pop("active", True), **kw)  # type: ignore[arg-type]


def test_never_a_departed_or_full_rep_and_none_when_nobody_has_room():
    reps = [rep("gone", active=False), rep("full", cap=2, load=2)]
    assert choose(Rule.ROUND_ROBIN, reps) is None
    assert choose(Rule.LEAST_LOADED, [*reps, rep("ok", cap=1)]).rep_id == "ok"


def test_round_robin_takes_turns_and_least_loaded_compares_to_capacity():
    reps = [rep("a", seq=3), rep("b", seq=1), rep("c", seq=2)]
    assert choose(Rule.ROUND_ROBIN, reps).rep_id == "b"
    loaded = [rep("big", cap=100, load=10), rep("small", cap=5, load=1)]
    assert choose(Rule.LEAST_LOADED, loaded).rep_id == "big"  # 10% vs 20%


def test_region_tag_and_sticky_fall_back_to_round_robin():
    reps = [rep("n", seq=1, regions=("Beijing",)), rep("s", seq=2, tags=("vip",))]
    assert choose(Rule.REGION, reps, region="beijing") == choose(
        Rule.REGION, reps, region="BEIJING"
    )
    assert choose(Rule.REGION, reps, region="beijing").rule == "region"
    assert choose(Rule.REGION, reps, region="xian").rule == "round_robin"
    assert choose(Rule.TAG, reps, tags=["VIP"]).rep_id == "s"
    assert choose(Rule.STICKY, reps, sticky_rep_ids=["s"]).rule == "sticky"
    assert choose(Rule.STICKY, reps, sticky_rep_ids=["gone"]).rep_id == "n"


def test_working_hours_prefer_reps_on_duty():
    monday_10 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    sunday = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    monday_night = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # 20:00 in Shanghai
    assert on_duty(HOURS, monday_10)
    assert not on_duty(HOURS, sunday) and not on_duty(HOURS, monday_night)
    assert on_duty({}, sunday)
    reps = [rep("off", seq=0, on_duty=False), rep("on", seq=5)]
    assert choose(Rule.ROUND_ROBIN, reps).rep_id == "on"
    # Nobody at work: the lead still goes to someone instead of waiting.
    assert choose(Rule.ROUND_ROBIN, [rep("off", on_duty=False)]).rep_id == "off"
    # The existing owner keeps the customer even off duty.
    assert choose(Rule.STICKY, reps, sticky_rep_ids=["off"]).rep_id == "off"


def test_new_owner_ignores_lead_capacity_but_not_departure():
    assert choose_owner(Rule.ROUND_ROBIN, [rep("full", cap=0)]) == "full"
    assert choose_owner(Rule.ROUND_ROBIN, [rep("gone", active=False)]) is None
