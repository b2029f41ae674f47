"""The conversion service's business metrics (OpenTelemetry counters, exported by Prometheus)."""

from __future__ import annotations

from opentelemetry import metrics

from loopkit.telemetry import SECONDS_BUCKETS

_meter = metrics.get_meter("closedloop.conversion")

leads_assigned = _meter.create_counter(
    "closedloop_leads_assigned", unit="{lead}", description="Leads assigned to a rep, by rule"
)
orders_paid = _meter.create_counter(
    "closedloop_orders_paid",
    unit="{order}",
    description="Orders paid; repeat=true for a customer's second or later paid order",
)
followups_logged = _meter.create_counter(
    "closedloop_followups_logged", unit="{follow_up}", description="Follow-ups logged, by kind"
)
welcome_latency = _meter.create_histogram(
    "closedloop_welcome_latency_seconds",
    unit="s",
    description="From WeCom's friend-add event to the welcome message handed to the sender",
    explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
)

RULES = ("round_robin", "least_loaded", "region", "tag", "sticky", "manual", "transfer")
FOLLOW_UP_KINDS = ("chat", "call", "meeting", "moments_like", "moments_comment", "note")


def export_zeros() -> None:
    """Touch every series once so dashboards show 0 instead of "no data" from the start."""
    for rule in RULES:
        leads_assigned.add(0, {"rule": rule})
    for repeat in ("true", "false"):
        orders_paid.add(0, {"repeat": repeat})
    for kind in FOLLOW_UP_KINDS:
        followups_logged.add(0, {"kind": kind})
