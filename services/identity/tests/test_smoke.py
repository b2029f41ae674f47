from closedloop.common.v1.common_pb2 import IDENTITY_KIND_WECHAT_OPENID, Identity
from closedloop.identity.v1 import identity_pb2 as pb


async def test_resolve_twice_gives_same_customer(stub):
    ident = Identity(kind=IDENTITY_KIND_WECHAT_OPENID, scope="wxapp1", value="o-abc")
    first = await stub.ResolveCustomer(pb.ResolveCustomerRequest(tenant_id="t1", identities=[ident]))
    second = await stub.ResolveCustomer(pb.ResolveCustomerRequest(tenant_id="t1", identities=[ident]))
    assert first.created and not second.created
    assert first.customer.customer_id == second.customer.customer_id
