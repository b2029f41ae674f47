"""ClosedLoop identity service: one customer id per person per tenant."""

from loopkit.settings import ServiceSpec

SPEC = ServiceSpec(name="identity", grpc_port=50051, http_port=8081, module="closedloop_identity")
