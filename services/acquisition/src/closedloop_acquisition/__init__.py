"""ClosedLoop acquisition service (T+L): channels, campaigns, landing pages, touches, leads."""

from loopkit.settings import ServiceSpec

SPEC = ServiceSpec(
    name="acquisition", grpc_port=50052, http_port=8082, module="closedloop_acquisition"
)
