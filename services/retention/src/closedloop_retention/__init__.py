"""ClosedLoop retention service (R+R): lifecycle, segments, broadcasts, loyalty, churn."""

from loopkit.settings import ServiceSpec

SPEC = ServiceSpec(name="retention", grpc_port=50054, http_port=8084, module="closedloop_retention")
