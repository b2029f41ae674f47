"""Who gets a broadcast and when: pure planning over candidates, the rules and a send window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from closedloop_retention.activity.rules import Rules


@dataclass(frozen=True)
class Candidate:
    customer_id: str
    unsubscribed: bool
    consent: bool
    has_contact: bool
    # Marketing messages sent or scheduled to them within the cap window.
    recent_messages: int
    # Local hour of day they interact most, if known.
    preferred_hour: int | None


@dataclass(frozen=True)
class Planned:
    customer_id: str
    send_at: datetime | None
    # "" when scheduled; else why skipped.
    skip_reason: str


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


class Clock:
    """Quiet hours in the tenant's local time."""

    def __init__(self, rules: Rules) -> None:
        self.offset = timedelta(minutes=rules.utc_offset_minutes)
        self.start = _minutes(rules.quiet_start)
        self.end = _minutes(rules.quiet_end)

    def local(self, t: datetime) -> datetime:
        return t + self.offset

    def quiet(self, t: datetime) -> bool:
        local = self.local(t)
        m = local.hour * 60 + local.minute
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= m < self.end
        return m >= self.start or m < self.end

    def quiet_over(self, t: datetime) -> datetime:
        """The first moment at or after t that is not quiet."""
        if not self.quiet(t):
            return t
        local = self.local(t)
        end = local.replace(hour=self.end // 60, minute=self.end % 60, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end - self.offset

    def at_hour(self, start: datetime, hour: int) -> datetime:
        """The first moment at or after start whose local hour is `hour`."""
        local = self.local(start)
        if local.hour == hour:
            return start
        candidate = local.replace(hour=hour, minute=0, second=0, microsecond=0)
        if candidate < local:
            candidate += timedelta(days=1)
        return candidate - self.offset


def preferred_hour(hours: list[int] | None) -> int | None:
    if not hours or max(hours) <= 0:
        return None
    return max(range(24), key=lambda h: (hours[h], -h))


def plan(
    candidates: list[Candidate],
    rules: Rules,
    window_start: datetime,
    window_end: datetime,
    now: datetime,
) -> list[Planned]:
    clock = Clock(rules)
    start = max(window_start, now)
    out: list[Planned] = []
    timed: list[tuple[datetime, str]] = []
    for c in candidates:
        reason = ""
        if c.unsubscribed:
            reason = "unsubscribed"
        elif not c.consent:
            reason = "no_consent"
        elif not c.has_contact:
            reason = "no_contact"
        elif c.recent_messages >= rules.cap_messages:
            reason = "frequency_cap"
        elif start >= window_end:
            reason = "window_closed"
        if reason:
            out.append(Planned(c.customer_id, None, reason))
            continue
        t = start
        if c.preferred_hour is not None:
            at = clock.at_hour(start, c.preferred_hour)
            if at < window_end and not clock.quiet(at):
                t = at
        timed.append((t, c.customer_id))
    gap = timedelta(seconds=1.0 / rules.send_rate_per_second)
    previous: datetime | None = None
    for wanted, customer_id in sorted(timed):
        t = wanted if previous is None else max(wanted, previous + gap)
        quiet = clock.quiet(t)
        t = clock.quiet_over(t)
        if t >= window_end:
            out.append(Planned(customer_id, None, "quiet_hours" if quiet else "window_full"))
            continue
        out.append(Planned(customer_id, t, ""))
        previous = t
    return out
