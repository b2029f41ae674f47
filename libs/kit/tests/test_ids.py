"""loopkit.ids: the ULIDs python-ulid would read back, always increasing within a process."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from ulid import ULID

from loopkit import ids
from loopkit.ids import new_ulid


def test_ids_are_ulids_of_now() -> None:
    before = int(time.time() * 1000)
    made = new_ulid()
    after = int(time.time() * 1000)
    parsed = ULID.from_str(made)
    assert str(parsed) == made and len(made) == 26
    assert before <= parsed.milliseconds <= after
    assert parsed.datetime <= datetime.now(UTC)


def test_ids_increase_within_a_millisecond_and_when_the_clock_steps_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = [new_ulid() for _ in range(20_000)]  # many per millisecond
    assert made == sorted(made) and len(set(made)) == len(made)
    last = ULID.from_str(made[-1])
    monkeypatch.setattr(ids.time, "time_ns", lambda: (last.milliseconds - 5_000) * 1_000_000)
    earlier_clock = new_ulid()
    assert earlier_clock > made[-1]
    assert ULID.from_str(earlier_clock).milliseconds == last.milliseconds
