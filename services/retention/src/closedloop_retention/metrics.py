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

# Set by the funnel metrics worker (transport/funnel_metrics.py) from the funnel read model.
funnel_customers = _meter.create_gauge(
    "closedloop_funnel_customers",
    unit="{customer}",
    description="Unique customers who reached a TLSRRR step in the trailing window, by tenant "
    "and step (the busiest funnel_metrics_max_tenants tenants)",
)
funnel_tenants_left_out = _meter.create_gauge(
    "closedloop_funnel_tenants_left_out",
    unit="{tenant}",
    description="Tenants with funnel steps in the window beyond funnel_metrics_max_tenants",
)


def initialise() -> None:
    """Export every counter from the start (dashboards show 0, not "no data")."""
    for stage in ("investigation", "development", "stable", "decline", "churned"):
        stage_changes.add(0, {"to_stage": stage})
    points_earned.add(0)
    broadcast_messages_sent.add(0)
    funnel_tenants_left_out.set(0)
