"""The retention service's business metrics."""

from __future__ import annotations

from opentelemetry import metrics

_meter = metrics.get_meter("closedloop.retention")

stage_changes = _meter.create_counter(
    "closedloop_stage_changes", unit="{change}", description="Lifecycle stage changes, by to_stage"
)
points_earned = _meter.create_counter(
    "closedloop_points_earned", unit="{point}", description="Loyalty points credited"
)
broadcast_messages_sent = _meter.create_counter(
    "closedloop_broadcast_messages_sent",
    unit="{message}",
    description="Broadcast messages handed to the sender",
)


def initialise() -> None:
    """Export every counter from the start (dashboards show 0, not "no data")."""
    for stage in ("investigation", "development", "stable", "decline", "churned"):
        stage_changes.add(0, {"to_stage": stage})
    points_earned.add(0)
    broadcast_messages_sent.add(0)
