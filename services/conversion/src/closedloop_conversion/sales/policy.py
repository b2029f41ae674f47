"""Choosing a rep for a lead: pure functions over the candidate reps (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo


class Rule(StrEnum):
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"
    REGION = "region"
    TAG = "tag"
    STICKY = "sticky"


@dataclass(frozen=True)
class Candidate:
    rep_id: str
    capacity: int
    open_leads: int
    rr_seq: int
    active: bool
    regions: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    # Within the rep's working hours now (reps without hours always are).
    on_duty: bool = True
    # Already given the lead's channel's daily cap of leads today.
    capped: bool = False

    @property
    def available(self) -> bool:
        """Never a departed rep, never a full one, never one at the channel's daily cap."""
        return self.active and self.open_leads < self.capacity and not self.capped

    @property
    def load(self) -> float:
        return self.open_leads / self.capacity if self.capacity > 0 else 1.0


@dataclass(frozen=True)
class Choice:
    rep_id: str
    rule: str


def on_duty(hours: Mapping[str, Any], at: datetime) -> bool:
    """Whether `at` falls in the working hours {"weekdays", "start", "end", "time_zone"}."""
    if not hours:
        return True
    local = at.astimezone(ZoneInfo(hours.get("time_zone") or "Asia/Shanghai"))
    if local.isoweekday() not in hours.get("weekdays", []):
        return False
    return bool(hours["start"] <= local.strftime("%H:%M") < hours["end"])


def day_start(at: datetime) -> datetime:
    """The start of `at`'s day, in UTC: daily caps count from there."""
    return at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


# The oldest turn first, ties by id (a C-level key: `choose` runs once per lead of a batch).
_TURN = attrgetter("rr_seq", "rep_id")


def _round_robin(pool: Sequence[Candidate]) -> Candidate:
    return min(pool, key=_TURN)


def _least_loaded(pool: Sequence[Candidate]) -> Candidate:
    return min(pool, key=lambda c: (c.load, c.open_leads, c.rr_seq, c.rep_id))


def choose(
    rule: Rule,
    candidates: Sequence[Candidate],
    *,
    region: str = "",
    tags: Sequence[str] = (),
    sticky_rep_ids: Sequence[str] = (),
) -> Choice | None:
    """The rep a lead goes to under `rule`, or None when nobody is available.

    Region, tag and sticky fall back to round-robin within the pool when they match nobody.
    """
    pool = [c for c in candidates if c.active and not c.capped and c.open_leads < c.capacity]
    if not pool:  # (`Candidate.available`, spelt out: this runs once per rep per lead)
        return None
    if rule is Rule.STICKY:
        # The relationship wins: the owner takes it even outside their working hours.
        for rep_id in sticky_rep_ids:
            match = next((c for c in pool if c.rep_id == rep_id), None)
            if match is not None:
                return Choice(match.rep_id, Rule.STICKY)
    # Reps at work now go first; off-duty reps still take leads rather than leaving them waiting.
    pool = [c for c in pool if c.on_duty] or pool
    if rule is Rule.REGION and region:
        matching = [c for c in pool if region.lower() in (r.lower() for r in c.regions)]
        if matching:
            return Choice(_round_robin(matching).rep_id, Rule.REGION)
    elif rule is Rule.TAG and tags:
        wanted = {t.lower() for t in tags}
        matching = [c for c in pool if wanted & {t.lower() for t in c.tags}]
        if matching:
            return Choice(_round_robin(matching).rep_id, Rule.TAG)
    elif rule is Rule.LEAST_LOADED:
        return Choice(_least_loaded(pool).rep_id, Rule.LEAST_LOADED)
    return Choice(_round_robin(pool).rep_id, Rule.ROUND_ROBIN)


def choose_owner(rule: Rule, candidates: Sequence[Candidate]) -> str | None:
    """A new owner for a transferred customer: capacity (open leads) does not limit friendships."""
    pool = [c for c in candidates if c.active]
    if not pool:
        return None
    if rule is Rule.LEAST_LOADED:
        return _least_loaded(pool).rep_id
    return _round_robin(pool).rep_id
