"""Time helpers: every stored time is UTC."""

from __future__ import annotations

from loopkit.timestamps import now as now  # shared; re-exported
from loopkit.timestamps import utc as utc
from loopkit.timestamps import utc_or_none as utc_or_none
