"""The broadcast planner (pure): send when they usually read, paced, never in quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from closedloop_retention.activity.rules import Rules
from closedloop_retention.broadcasts import planner


def cand(cid: str, hour: int | None = None, recent: int = 0) -> planner.Candidate:
    return planner.Candidate(cid, False, True, True, recent, hour)


def test_send_time_follows_the_customers_active_hour_and_pace() -> None:
    rules = Rules(
        utc_offset_minutes=480, quiet_start="22:00", quiet_end="08:00", send_rate_per_second=1.0
    )
    # 09:00 local (UTC+8) = 01:00 UTC.
    start = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    end = start + timedelta(hours=12)
    plan = {
        p.customer_id: p
        for p in planner.plan(
            [cand("a", hour=20), cand("b"), cand("c"), cand("d", hour=23), cand("e", recent=4)],
            rules,
            start,
            end,
            start,
        )
    }
    assert plan["a"].send_at == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # 20:00 local
    assert {plan["b"].send_at, plan["c"].send_at} == {start, start + timedelta(seconds=1)}
    assert plan["d"].send_at is not None and plan["d"].send_at <= start + timedelta(seconds=2)
    assert plan["e"].skip_reason == "frequency_cap"


def test_quiet_hours_and_a_full_window() -> None:
    rules = Rules(
        utc_offset_minutes=0, quiet_start="22:00", quiet_end="08:00", send_rate_per_second=1.0
    )
    start = datetime(2026, 12, 1, 21, 59, 58, tzinfo=UTC)
    end = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
    plan = planner.plan([cand(str(i)) for i in range(4)], rules, start, end, start)
    reasons = sorted(p.skip_reason for p in plan)
    assert reasons == ["", "", "quiet_hours", "quiet_hours"]
    # An hour-long window at 1 message per second has room for 3600.
    short = planner.plan(
        [cand(str(i)) for i in range(3)],
        Rules(send_rate_per_second=1.0, quiet_start="00:00", quiet_end="00:00"),
        start,
        start + timedelta(seconds=2),
        start,
    )
    assert sorted(p.skip_reason for p in short) == ["", "", "window_full"]
