"""ClosedLoop WeChat gateway: the one place the platform calls WeChat and WeCom."""

from loopkit.settings import ServiceSpec

SPEC = ServiceSpec(name="gateway", grpc_port=50056, http_port=8086, module="closedloop_gateway")
