"""ClosedLoop referral service (last R): codes, shares, attribution, rewards, fraud."""

from loopkit.settings import ServiceSpec

SPEC = ServiceSpec(name="referral", grpc_port=50055, http_port=8085, module="closedloop_referral")
