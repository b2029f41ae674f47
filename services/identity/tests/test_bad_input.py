"""Bad input gets the right gRPC status, a reason naming the field, and leaves no row behind."""

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct
from sqlalchemy import func, select

from closedloop.common.v1 import common_pb2 as c
from closedloop.identity.v1 import identity_pb2 as pb
from closedloop_identity.models import AuditRow, CustomerRow, IdentityRow, kit
from identity_helpers import openid, resolve_request


async def _row_counts(identity) -> dict[str, int]:
    async with identity.runtime.sessions() as session:
        counts = {}
        for name, table in [
            ("customers", CustomerRow.__table__),
            ("identities", IdentityRow.__table__),
            ("audit", AuditRow.__table__),
            ("outbox", kit.outbox),
        ]:
            counts[name] = (
                await session.execute(select(func.count()).select_from(table))
            ).scalar_one()
        return counts


def _blob(size: int) -> Struct:
    s = Struct()
    s.update({"notes": "x" * size})
    return s


BAD_REQUESTS = {
    "empty identity list": (
        pb.ResolveCustomerRequest(tenant_id="t-bad"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "identities",
    ),
    "unknown kind": (
        pb.ResolveCustomerRequest(tenant_id="t-bad", identities=[c.Identity(kind=99, value="x")]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "identities[0].kind",
    ),
    "unspecified kind": (
        pb.ResolveCustomerRequest(tenant_id="t-bad", identities=[c.Identity(value="x")]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "identities[0].kind",
    ),
    "invalid phone": (
        pb.ResolveCustomerRequest(
            tenant_id="t-bad",
            identities=[openid("o-1"), c.Identity(kind=c.IDENTITY_KIND_PHONE, value="12345")],
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "identities[1].value",
    ),
    "missing tenant": (
        pb.ResolveCustomerRequest(identities=[openid("o-1")]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "tenant_id",
    ),
    "malformed tenant": (
        pb.ResolveCustomerRequest(tenant_id="a b/c", identities=[openid("o-1")]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "tenant_id",
    ),
    "1 MB attribute blob": (
        pb.ResolveCustomerRequest(
            tenant_id="t-bad", identities=[openid("o-1")], attributes=_blob(1024 * 1024)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "attributes",
    ),
    "openid without appid": (
        pb.ResolveCustomerRequest(
            tenant_id="t-bad",
            identities=[c.Identity(kind=c.IDENTITY_KIND_WECHAT_OPENID, value="o-1")],
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "identities[0].scope",
    ),
    "empty value": (
        pb.ResolveCustomerRequest(
            tenant_id="t-bad",
            identities=[c.Identity(kind=c.IDENTITY_KIND_WECHAT_UNIONID, value="  ")],
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "identities[0].value",
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
async def test_bad_resolve_is_refused_and_stores_nothing(case, stub, identity):
    request, code, field = BAD_REQUESTS[case]
    before = await _row_counts(identity)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ResolveCustomer(request)
    assert err.value.code() == code
    assert field in err.value.details()
    assert ("closedloop-field", field) in tuple(err.value.trailing_metadata() or ())
    assert await _row_counts(identity) == before


async def test_unknown_customer_is_not_found(stub):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetCustomer(pb.GetCustomerRequest(tenant_id="t-bad", customer_id="nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_another_tenants_customer_is_not_found(stub):
    made = await stub.ResolveCustomer(resolve_request("t-owner", openid("o-1")))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetCustomer(
            pb.GetCustomerRequest(tenant_id="t-thief", customer_id=made.customer.customer_id)
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_linking_someone_elses_identity_is_already_exists(stub):
    a = await stub.ResolveCustomer(resolve_request("t-link", openid("o-a")))
    await stub.ResolveCustomer(resolve_request("t-link", openid("o-b")))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.LinkIdentity(
            pb.LinkIdentityRequest(
                tenant_id="t-link", customer_id=a.customer.customer_id, identity=openid("o-b")
            )
        )
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_unmerging_an_active_customer_is_failed_precondition(stub):
    a = await stub.ResolveCustomer(resolve_request("t-um", openid("o-a")))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.UnmergeCustomer(
            pb.UnmergeCustomerRequest(tenant_id="t-um", customer_id=a.customer.customer_id)
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_merging_one_customer_with_itself_is_invalid(stub):
    a = await stub.ResolveCustomer(resolve_request("t-m1", openid("o-a")))
    cid = a.customer.customer_id
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.MergeCustomers(
            pb.MergeCustomersRequest(tenant_id="t-m1", customer_ids=[cid, cid])
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
