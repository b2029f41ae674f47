"""What the segments concept hands to transports: plain values, never rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class SegmentView:
    id: str
    name: str
    expression: str
    created_at: datetime
