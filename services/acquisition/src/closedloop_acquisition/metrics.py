"""Business metrics of the acquisition service."""

from __future__ import annotations

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

_meter = metrics.get_meter("closedloop.acquisition")
touches_recorded = _meter.create_counter(
    "closedloop_touches_recorded", unit="{touch}", description="Touches recorded, by kind"
)
# Counted in plain ints and read when the metrics are collected: a form post is the hot path, and
# an OpenTelemetry counter's `add` (a measurement, its attributes hashed, through every reader)
# cost ~1 % of its CPU.
_leads = {"new": 0, "repeat": 0}


def _observe_leads(options: CallbackOptions) -> list[Observation]:
    return [Observation(count, {"outcome": outcome}) for outcome, count in _leads.items()]


leads_captured = _meter.create_observable_counter(
    "closedloop_leads_captured",
    callbacks=[_observe_leads],
    unit="{lead}",
    description="Lead form submissions, by outcome (new lead or repeat submission)",
)


def start() -> None:
    """Export every series from the start, so dashboards show 0 rather than no data (the leads
    counter is observed: both outcomes are always there)."""
    touches_recorded.add(0, {"kind": "subscribe", "channel_kind": "qr_temporary"})


def touch(kind: str, channel_kind: str) -> None:
    touches_recorded.add(1, {"kind": kind, "channel_kind": channel_kind or "none"})


def lead(repeat: bool) -> None:
    _leads["repeat" if repeat else "new"] += 1
