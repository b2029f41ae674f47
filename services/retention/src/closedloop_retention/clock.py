"""Time helpers shared by the domain packages: every stored time is UTC."""

from __future__ import annotations

from datetime import datetime

from loopkit.timestamps import now as now  # shared; re-exported
from loopkit.timestamps import utc as utc
from loopkit.timestamps import utc_or_none as utc_or_none


def days_between(earlier: datetime, later: datetime) -> float:
    return (utc(later) - utc(earlier)).total_seconds() / 86400.0
