"""Business metrics of the acquisition service."""

from __future__ import annotations

from opentelemetry import metrics

_meter = metrics.get_meter("closedloop.acquisition")
touches_recorded = _meter.create_counter(
    "closedloop_touches_recorded", unit="{touch}", description="Touches recorded, by kind"
)
leads_captured = _meter.create_counter(
    "closedloop_leads_captured",
    unit="{lead}",
    description="Lead form submissions, by outcome (new lead or repeat submission)",
)


def start() -> None:
    """Export every series from the start, so dashboards show 0 rather than no data."""
    touches_recorded.add(0, {"kind": "subscribe", "channel_kind": "qr_temporary"})
    leads_captured.add(0, {"outcome": "new"})
    leads_captured.add(0, {"outcome": "repeat"})


def touch(kind: str, channel_kind: str) -> None:
    touches_recorded.add(1, {"kind": kind, "channel_kind": channel_kind or "none"})


def lead(repeat: bool) -> None:
    leads_captured.add(1, {"outcome": "repeat" if repeat else "new"})
