"""ResolveCustomer over real gRPC, on SQLite and PostgreSQL, with events on a real JetStream."""

import uuid

import grpc
import pytest

from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1 import identity_events_pb2 as ev
from closedloop.identity.v1 import identity_pb2 as pb
from identity_helpers import (
    external_userid,
    keys,
    opened,
    openid,
    pending_id,
    phone,
    resolve_request,
    unionid,
)
from loopkit import pii
from loopkit.events import unpack
from loopkit_dev.testing import eventually, read_events


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


async def test_same_openid_twice_is_one_customer(stub, tenant):
    first = await stub.ResolveCustomer(resolve_request(tenant, openid("o-1")))
    again = await stub.ResolveCustomer(resolve_request(tenant, openid("o-1")))
    assert first.created and not again.created
    assert again.customer.customer_id == first.customer.customer_id


async def test_same_openid_in_two_tenants_is_two_customers(stub, tenant):
    a = await stub.ResolveCustomer(resolve_request(tenant, openid("o-1")))
    b = await stub.ResolveCustomer(resolve_request(tenant + "-other", openid("o-1")))
    assert a.customer.customer_id != b.customer.customer_id


async def test_new_identity_attaches_to_the_known_customer(stub, tenant):
    first = await stub.ResolveCustomer(resolve_request(tenant, openid("o-1")))
    second = await stub.ResolveCustomer(
        resolve_request(tenant, openid("o-1"), phone("138 0013 8000"))
    )
    assert second.customer.customer_id == first.customer.customer_id
    assert (c.IDENTITY_KIND_PHONE, "", "+8613800138000") in keys(second.customer)


async def test_openid_plus_anothers_unionid_merges_and_publishes(
    stub, tenant, identity, nats_client
):
    older = await stub.ResolveCustomer(resolve_request(tenant, unionid("u-older")))
    newer = await stub.ResolveCustomer(resolve_request(tenant, openid("o-newer")))
    # WeChat OAuth hands back the openid with its unionid: verified, so it may merge.
    merged = await stub.ResolveCustomer(
        resolve_request(tenant, openid("o-newer"), unionid("u-older", verified=True))
    )
    survivor, gone = older.customer.customer_id, newer.customer.customer_id
    assert merged.customer.customer_id == survivor
    assert list(merged.merged_ids) == [gone]
    assert keys(merged.customer) == {
        (c.IDENTITY_KIND_WECHAT_UNIONID, "", "u-older"),
        (c.IDENTITY_KIND_WECHAT_OPENID, "wx-app-1", "o-newer"),
    }
    # A lookup of the merged id answers with the survivor.
    got = await stub.GetCustomer(pb.GetCustomerRequest(tenant_id=tenant, customer_id=gone))
    assert got.customer.customer_id == survivor and got.requested_id == gone

    async def merged_event():
        events = await read_events(nats_client, "IDENTITY", tenant_id=tenant)
        return [e for e in events if e.type == "customer.merged"]

    await eventually(merged_event)
    [event] = await merged_event()
    assert pii.is_sealed(unpack(event, ev.CustomerMerged).trigger.value)
    payload = unpack(await opened(stub, event), ev.CustomerMerged)
    assert (payload.survivor_id, payload.merged_id) == (survivor, gone)
    assert payload.trigger.value == "u-older"
    types = sorted(e.type for e in await read_events(nats_client, "IDENTITY", tenant_id=tenant))
    assert types == ["customer.created", "customer.created", "customer.merged"]


async def test_claimed_unionid_never_merges_but_a_verified_one_does(stub, tenant, identity):
    a = await stub.ResolveCustomer(resolve_request(tenant, openid("o-a")))
    b = await stub.ResolveCustomer(resolve_request(tenant, unionid("u-b", verified=True)))
    # A form posts customer A's openid with customer B's unionid, which anyone can type.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ResolveCustomer(resolve_request(tenant, openid("o-a"), unionid("u-b")))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    for customer in (a, b):
        got = await stub.GetCustomer(
            pb.GetCustomerRequest(tenant_id=tenant, customer_id=customer.customer.customer_id)
        )
        assert got.customer.status == pb.CUSTOMER_STATUS_ACTIVE
        assert keys(got.customer) == keys(customer.customer)
    # Alone, the claimed unionid is still a hint: it finds the customer that holds it.
    hint = await stub.ResolveCustomer(resolve_request(tenant, unionid("u-b")))
    assert hint.customer.customer_id == b.customer.customer_id and not hint.merged_ids
    # The same pair from WeChat OAuth (verified) is proof of one person: the two merge.
    proved = await stub.ResolveCustomer(
        resolve_request(tenant, openid("o-a"), unionid("u-b", verified=True))
    )
    assert proved.customer.customer_id == a.customer.customer_id
    assert list(proved.merged_ids) == [b.customer.customer_id]


async def test_two_openids_of_different_customers_are_refused(stub, tenant):
    await stub.ResolveCustomer(resolve_request(tenant, openid("o-a")))
    await stub.ResolveCustomer(resolve_request(tenant, openid("o-b")))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ResolveCustomer(resolve_request(tenant, openid("o-a"), openid("o-b")))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "merge policy" in err.value.details()


async def test_merge_policy_is_per_tenant(stub, tenant):
    policy = pb.MergePolicy(merge_kinds=[c.IDENTITY_KIND_EXTERNAL])
    await stub.SetMergePolicy(pb.SetMergePolicyRequest(tenant_id=tenant, policy=policy))
    got = await stub.GetMergePolicy(pb.GetMergePolicyRequest(tenant_id=tenant))
    assert list(got.policy.merge_kinds) == [c.IDENTITY_KIND_EXTERNAL]
    await stub.ResolveCustomer(resolve_request(tenant, unionid("u-1")))
    await stub.ResolveCustomer(resolve_request(tenant, openid("o-1")))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ResolveCustomer(
            resolve_request(tenant, openid("o-1"), unionid("u-1", verified=True))
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    other = await stub.GetMergePolicy(pb.GetMergePolicyRequest(tenant_id=tenant + "-x"))
    assert c.IDENTITY_KIND_WECHAT_UNIONID in other.policy.merge_kinds


async def test_pending_id_resolves_to_external_userid_keeping_the_customer(stub, tenant):
    pending = await stub.ResolveCustomer(resolve_request(tenant, pending_id("p-1"), source="ad"))
    real = await stub.ResolveCustomer(
        resolve_request(tenant, pending_id("p-1"), external_userid("wm-1"))
    )
    assert real.customer.customer_id == pending.customer.customer_id
    assert real.customer.attributes["source"] == "ad"


async def test_pending_customer_folds_into_an_existing_customer(stub, tenant):
    known = await stub.ResolveCustomer(resolve_request(tenant, external_userid("wm-1")))
    pending = await stub.ResolveCustomer(resolve_request(tenant, pending_id("p-2")))
    both = await stub.ResolveCustomer(
        resolve_request(tenant, pending_id("p-2"), external_userid("wm-1"))
    )
    assert both.customer.customer_id == known.customer.customer_id
    assert list(both.merged_ids) == [pending.customer.customer_id]


async def test_attributes_merge_shallowly(stub, tenant):
    await stub.ResolveCustomer(resolve_request(tenant, openid("o-1"), city="Hangzhou", age=30))
    res = await stub.ResolveCustomer(resolve_request(tenant, openid("o-1"), city="Shanghai"))
    assert dict(res.customer.attributes) == {"city": "Shanghai", "age": 30}


async def test_search_finds_by_phone_in_any_format(stub, tenant):
    made = await stub.ResolveCustomer(resolve_request(tenant, phone("13800138000")))
    found = await stub.SearchCustomers(
        pb.SearchCustomersRequest(tenant_id=tenant, value="+86 138-0013-8000")
    )
    assert [x.customer_id for x in found.customers] == [made.customer.customer_id]
    none = await stub.SearchCustomers(
        pb.SearchCustomersRequest(tenant_id=tenant + "x", value="13800138000")
    )
    assert list(none.customers) == []


async def test_tenant_from_metadata(stub, tenant):
    request = resolve_request("", openid("o-md"))
    res = await stub.ResolveCustomer(request, metadata=(("x-tenant-id", tenant),))
    assert res.customer.tenant_id == tenant
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ResolveCustomer(
            resolve_request(tenant + "-x", openid("o-md")), metadata=(("x-tenant-id", tenant),)
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_repeat_resolve_answers_every_id_merged_into_the_customer(stub, tenant):
    a = await stub.ResolveCustomer(resolve_request(tenant, openid("o-a")))
    b = await stub.ResolveCustomer(resolve_request(tenant, openid("o-b")))
    c_ = await stub.ResolveCustomer(resolve_request(tenant, openid("o-c")))
    a_id, b_id, c_id = (x.customer.customer_id for x in (a, b, c_))
    # c into b, then b into a: a chain of two merges.
    await stub.MergeCustomers(pb.MergeCustomersRequest(tenant_id=tenant, customer_ids=[b_id, c_id]))
    await stub.MergeCustomers(pb.MergeCustomersRequest(tenant_id=tenant, customer_ids=[a_id, b_id]))
    again = await stub.ResolveCustomer(resolve_request(tenant, openid("o-c")))
    assert again.customer.customer_id == a_id and not again.created
    assert sorted(again.customer.merged_ids) == sorted([b_id, c_id])
    assert keys(again.customer) == {
        (c.IDENTITY_KIND_WECHAT_OPENID, "wx-app-1", v) for v in ("o-a", "o-b", "o-c")
    }
