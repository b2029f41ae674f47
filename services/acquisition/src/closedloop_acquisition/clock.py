"""The clock: transports read it once per request, message or round and hand `now` to the use
cases, so domain code never reads the time itself (tests and replays can pass their own)."""

from __future__ import annotations

from loopkit.timestamps import now as now  # shared; re-exported
from loopkit.timestamps import utc as utc
