"""How acquisition reads the gateway's refusals: a refusal of the request comes back as the same
domain error naming its field; our own credentials refused (UNAUTHENTICATED) or a conflict at the
gateway (ABORTED) are an outage of the gateway (UNAVAILABLE to our callers), never their fault."""

from __future__ import annotations

import grpc
import pytest

from closedloop.gateway.v1 import gateway_pb2 as gw
from closedloop.gateway.v1 import gateway_pb2_grpc
from loopkit.errors import DependencyUnavailable, InvalidArgument
from loopkit.gateway_client import GatewayClient
from loopkit.grpc_server import GrpcServer


class RefusingGateway(gateway_pb2_grpc.GatewayServiceServicer):  # type: ignore[misc]
    async def CreateQrCode(
        self, request: gw.CreateQrCodeRequest, context: grpc.aio.ServicerContext
    ) -> gw.CreateQrCodeResponse:
        if request.scene_str == "bad":
            raise InvalidArgument("too long for WeChat", field="scene_str")
        if request.scene_str == "token":
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown api token")
        await context.abort(grpc.StatusCode.ABORTED, "busy with another call")
        raise AssertionError("aborted")


async def test_refusals_keep_their_field_and_rejected_credentials_are_an_outage() -> None:
    server = GrpcServer("127.0.0.1", 0)
    server.add(
        lambda s: gateway_pb2_grpc.add_GatewayServiceServicer_to_server(RefusingGateway(), s),  # type: ignore[no-untyped-call]
        ["closedloop.gateway.v1.GatewayService"],
    )
    await server.start()
    client = GatewayClient(grpc.aio.insecure_channel(f"127.0.0.1:{server.port}"))
    try:
        with pytest.raises(InvalidArgument) as refused:
            await client.create_qr_code("t-gw", "wx-app", "bad", 0)
        assert refused.value.field == "scene_str"
        for scene in ("token", "conflict"):
            with pytest.raises(DependencyUnavailable, match="gateway"):
                await client.create_qr_code("t-gw", "wx-app", scene, 0)
    finally:
        await client.close()
        await server.stop(0)
