"""What the sales use cases take in: reps and captured leads, and the checks of their fields."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from closedloop_conversion.common import optional
from loopkit.errors import InvalidArgument

MAX_CAPACITY = 100_000
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


@dataclass(frozen=True)
class RepInput:
    wecom_user_id: str
    name: str
    team: str
    capacity: int
    working_hours: dict[str, Any] = field(default_factory=dict)
    regions: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class RepChanges:
    name: str | None = None
    team: str | None = None
    capacity: int | None = None
    working_hours: dict[str, Any] | None = None
    status: str | None = None
    regions: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None


@dataclass(frozen=True)
class CapturedLead:
    lead_id: str
    customer_id: str
    campaign_id: str
    channel_id: str
    owner_team: str
    region: str
    tags: tuple[str, ...]
    captured_at: datetime
    # The channel's most leads per rep per day (0 = no cap).
    daily_cap: int = 0


def validate_capacity(capacity: int) -> int:
    if not 0 <= capacity <= MAX_CAPACITY:
        raise InvalidArgument(f"must be between 0 and {MAX_CAPACITY}", field="capacity")
    return capacity


def validate_hours(hours: dict[str, Any]) -> dict[str, Any]:
    """{"weekdays": [1..7], "start": "HH:MM", "end": "HH:MM", "time_zone": IANA} or {}."""
    if not hours:
        return {}
    days = sorted(set(hours.get("weekdays") or []))
    if any(not 1 <= d <= 7 for d in days):
        raise InvalidArgument("weekdays are 1 (Monday) to 7", field="working_hours.weekdays")
    start, end = hours.get("start", ""), hours.get("end", "")
    for name, value in (("start", start), ("end", end)):
        if not _HHMM.match(value):
            raise InvalidArgument("must be HH:MM", field=f"working_hours.{name}")
    if start >= end:
        raise InvalidArgument("must be after start", field="working_hours.end")
    zone = hours.get("time_zone") or "Asia/Shanghai"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument("unknown time zone", field="working_hours.time_zone") from None
    return {"weekdays": days, "start": start, "end": end, "time_zone": zone}


def labels(values: Sequence[str], field_name: str) -> list[str]:
    return list(dict.fromkeys(optional(v, field_name, max_len=64) for v in values if v.strip()))
