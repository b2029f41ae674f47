"""How the identity client reads identity's answers: an outage is DependencyUnavailable (retried
by consumers for as long as it lasts), a bug in identity is not (it counts as a failure)."""

from __future__ import annotations

import grpc
import pytest

from closedloop.identity.v1 import identity_pb2, identity_pb2_grpc
from loopkit.customers import IdentityValue
from loopkit.errors import DependencyUnavailable
from loopkit.grpc_server import GrpcServer
from loopkit.identity_client import IdentityClient, IdentityFailed
from loopkit.outages import is_outage


class BrokenIdentity(identity_pb2_grpc.IdentityServiceServicer):  # type: ignore[misc]
    """Identity with a bug in ResolveCustomer (answers INTERNAL through the kit's interceptor)."""

    async def ResolveCustomer(
        self, request: identity_pb2.ResolveCustomerRequest, context: grpc.aio.ServicerContext
    ) -> identity_pb2.ResolveCustomerResponse:
        raise RuntimeError("identity has a bug")


async def test_an_internal_error_of_identity_is_a_failure_not_an_outage() -> None:
    server = GrpcServer("127.0.0.1", 0)
    server.add(
        lambda s: identity_pb2_grpc.add_IdentityServiceServicer_to_server(BrokenIdentity(), s),  # type: ignore[no-untyped-call]
        ["closedloop.identity.v1.IdentityService"],
    )
    await server.start()
    client = IdentityClient(grpc.aio.insecure_channel(f"127.0.0.1:{server.port}"))
    try:
        with pytest.raises(IdentityFailed, match="INTERNAL") as caught:
            await client.resolve("t-kit", [IdentityValue("wechat_unionid", "u-1")])
        assert not is_outage(caught.value)
        await server.stop(0)  # now identity is away altogether
        with pytest.raises(DependencyUnavailable) as away:
            await client.resolve("t-kit", [IdentityValue("wechat_unionid", "u-1")])
        assert is_outage(away.value)
    finally:
        await client.close()
