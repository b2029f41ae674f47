"""A channel's cost over a date range (pure).

A channel carries one cost (what was spent on it). Cost per lead over a range must divide the cost
of that range, so the cost is spread evenly over the channel's active life: from its creation to
its end (its code's expiry or its deletion, whichever comes first, even when still ahead) or,
for a channel without an end, until now. The range's cost is the part of the life it covers:

    cost x |range ∩ life| / |life|

No range means the whole cost. An open-ended channel's cost is read as spend to date, so one
range's share shrinks as the channel keeps running (its daily cost falls); dated cost entries
would be the exact alternative when spend is uneven.
"""

from __future__ import annotations

from datetime import datetime

from loopkit.timestamps import utc, utc_or_none


def cost_in_range(  # noqa: PLR0917 - a channel's life and the range, in their order
    cost_minor: int,
    created_at: datetime,
    stopped_at: datetime | None,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
) -> int:
    """The minor units of `cost_minor` spent in [since, until)."""
    if not cost_minor or (since is None and until is None):
        return cost_minor
    start = utc(created_at)
    end = max(utc(stopped_at) if stopped_at else utc(now), start)
    lo = max(start, utc_or_none(since) or start)
    hi = min(end, utc_or_none(until) or end)
    life = (end - start).total_seconds()
    if life <= 0:  # created this instant: all of it, if the range holds that instant
        inside = (since is None or utc(since) <= start) and (until is None or start < utc(until))
        return cost_minor if inside else 0
    covered = max(0.0, (hi - lo).total_seconds())
    return round(cost_minor * covered / life)


def stopped_at(expires_at: datetime | None, deleted_at: datetime | None) -> datetime | None:
    """When a channel stopped: the first of its code's expiry and its deletion."""
    ends = [utc(t) for t in (expires_at, deleted_at) if t is not None]
    return min(ends) if ends else None
