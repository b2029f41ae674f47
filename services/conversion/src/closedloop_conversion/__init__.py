"""ClosedLoop conversion service (S): reps, lead assignment, ownership, follow-ups, orders."""

from loopkit.settings import ServiceSpec

SPEC = ServiceSpec(
    name="conversion", grpc_port=50053, http_port=8083, module="closedloop_conversion"
)
