"""The identity client the stage services use: gRPC answers become domain results and errors."""

from __future__ import annotations

import uuid

import grpc
import pytest

from loopkit.customers import IdentityValue
from loopkit.errors import DependencyUnavailable, InvalidArgument, NotFound
from loopkit.identity_client import IdentityClient
from loopkit_dev.natsserver import free_port
from loopkit_dev.testing import RunningService


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


async def test_resolve_creates_then_finds_and_merges(identity: RunningService, tenant: str) -> None:
    client = IdentityClient(identity.new_channel(), actor="acquisition")
    try:
        openid = IdentityValue("wechat_openid", "o-1", scope="wx-app")
        first = await client.resolve(tenant, [openid], attributes={"city": "Xi'an"})
        again = await client.resolve(tenant, [openid])
        assert first.created and not again.created
        assert again.customer_id == first.customer_id
        assert IdentityValue("wechat_openid", "o-1", scope="wx-app") in again.identities

        other = await client.resolve(tenant, [IdentityValue("wechat_unionid", "u-2")])
        # Unionids WeChat handed over (OAuth): verified, so they may merge.
        unionids = [
            IdentityValue("wechat_unionid", "u-1", verified=True),
            IdentityValue("wechat_unionid", "u-2", verified=True),
        ]
        joined = await client.resolve(tenant, [openid, *unionids])
        # The oldest customer survives; the other one answers with the survivor from now on.
        assert joined.customer_id == first.customer_id
        assert joined.merged_ids == (other.customer_id,)
        assert await client.current_id(tenant, other.customer_id) == first.customer_id
    finally:
        await client.close()


async def test_errors_come_back_as_domain_errors_naming_the_field(
    identity: RunningService, tenant: str
) -> None:
    client = IdentityClient(identity.new_channel())
    try:
        with pytest.raises(InvalidArgument) as bad_phone:
            await client.resolve(tenant, [IdentityValue("phone", "12")])
        assert bad_phone.value.field is not None and "phone" in str(bad_phone.value).lower()
        with pytest.raises(InvalidArgument, match="unknown identity kind"):
            await client.resolve(tenant, [IdentityValue("fax", "123")])
        with pytest.raises(NotFound):
            await client.current_id(tenant, "c-does-not-exist")
    finally:
        await client.close()


async def test_an_unreachable_identity_service_is_a_retryable_dependency_error(tenant: str) -> None:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}")
    client = IdentityClient(channel)
    try:
        with pytest.raises(DependencyUnavailable, match="UNAVAILABLE"):
            await client.resolve(tenant, [IdentityValue("wechat_unionid", "u-x")])
    finally:
        await client.close()
