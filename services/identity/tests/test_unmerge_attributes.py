"""Unmerge splits the attributes back: the survivor gives up what came with the merged customer,
and customer.unmerged names the merge it reverses (issue 13)."""

import asyncio
import uuid

import pytest

from closedloop.events.v1 import identity_events_pb2 as ev
from closedloop.identity.v1 import identity_pb2 as pb
from closedloop.identity.v1 import identity_pb2_grpc
from identity_helpers import openid, resolve_request, unionid
from loopkit.events import unpack
from loopkit_dev.testing import eventually, read_events


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


async def _merge(stub, tenant: str, *ids: str) -> pb.MergeCustomersResponse:
    return await stub.MergeCustomers(
        pb.MergeCustomersRequest(tenant_id=tenant, customer_ids=list(ids), actor="ops")
    )


async def _unmerge(stub, tenant: str, customer_id: str) -> pb.UnmergeCustomerResponse:
    return await stub.UnmergeCustomer(
        pb.UnmergeCustomerRequest(tenant_id=tenant, customer_id=customer_id, actor="ops")
    )


async def _attributes(stub, tenant: str, customer_id: str) -> dict:
    got = await stub.GetCustomer(pb.GetCustomerRequest(tenant_id=tenant, customer_id=customer_id))
    return dict(got.customer.attributes)


async def test_unmerge_takes_back_the_merged_customers_attributes(stub, tenant, nats_client):
    a = await stub.ResolveCustomer(resolve_request(tenant, openid("o-a"), name="Li", tier="gold"))
    b = await stub.ResolveCustomer(
        resolve_request(tenant, openid("o-b"), name="Wang", consent="sms", city="Xi'an")
    )
    a_id, b_id = a.customer.customer_id, b.customer.customer_id
    merged = await _merge(stub, tenant, a_id, b_id)
    assert dict(merged.survivor.attributes) == {
        "name": "Li",  # the survivor's own value wins
        "tier": "gold",
        "consent": "sms",
        "city": "Xi'an",
    }
    # After the merge the survivor's city changes: that is the survivor's now and stays.
    await stub.ResolveCustomer(resolve_request(tenant, openid("o-a"), city="Beijing"))

    undone = await _unmerge(stub, tenant, b_id)
    assert dict(undone.survivor.attributes) == {"name": "Li", "tier": "gold", "city": "Beijing"}
    assert dict(undone.restored.attributes) == {"name": "Wang", "consent": "sms", "city": "Xi'an"}
    assert await _attributes(stub, tenant, a_id) == dict(undone.survivor.attributes)
    assert await _attributes(stub, tenant, b_id) == dict(undone.restored.attributes)

    async def events():
        found = await read_events(nats_client, "IDENTITY", tenant_id=tenant)
        merges = [unpack(e, ev.CustomerMerged) for e in found if e.type == "customer.merged"]
        unmerges = [unpack(e, ev.CustomerUnmerged) for e in found if e.type == "customer.unmerged"]
        return (merges, unmerges) if merges and unmerges else None

    await eventually(events)
    [merge], [unmerge] = await events()
    assert merge.merge_id and unmerge.merge_id == merge.merge_id
    assert (unmerge.restored_id, unmerge.survivor_id, unmerge.merged_into_id) == (b_id, a_id, a_id)
    assert unmerge.HasField("merged_at")


async def test_a_merge_found_by_resolve_is_split_back_too(stub, tenant):
    a = await stub.ResolveCustomer(
        resolve_request(tenant, unionid("u-1", verified=True), source="form")
    )
    b = await stub.ResolveCustomer(resolve_request(tenant, openid("o-1"), nickname="xiaoli"))
    both = await stub.ResolveCustomer(
        resolve_request(tenant, openid("o-1"), unionid("u-1", verified=True))
    )
    a_id, b_id = a.customer.customer_id, b.customer.customer_id
    assert list(both.merged_ids) == [b_id]
    assert dict(both.customer.attributes) == {"source": "form", "nickname": "xiaoli"}
    undone = await _unmerge(stub, tenant, b_id)
    assert dict(undone.survivor.attributes) == {"source": "form"}
    assert dict(undone.restored.attributes) == {"nickname": "xiaoli"}
    assert undone.survivor.customer_id == a_id


async def test_unmerge_through_a_later_merge_keeps_what_the_holder_had(stub, tenant):
    # Created oldest first: c, then b, then a; a merge keeps the oldest.
    c = await stub.ResolveCustomer(resolve_request(tenant, openid("o-c"), color="red", c=1))
    b = await stub.ResolveCustomer(resolve_request(tenant, openid("o-b"), b=1))
    a = await stub.ResolveCustomer(resolve_request(tenant, openid("o-a"), color="red", pet="cat"))
    a_id, b_id, c_id = (x.customer.customer_id for x in (a, b, c))
    await _merge(stub, tenant, b_id, a_id)  # b takes color and pet from a
    held = await _merge(stub, tenant, c_id, b_id)  # c takes b and pet (its color is its own)
    assert dict(held.survivor.attributes) == {"color": "red", "c": 1, "b": 1, "pet": "cat"}

    undone = await _unmerge(stub, tenant, a_id)
    assert undone.survivor.customer_id == c_id
    assert dict(undone.survivor.attributes) == {"color": "red", "c": 1, "b": 1}
    assert dict(undone.restored.attributes) == {"color": "red", "pet": "cat"}
    # b, still merged into c, no longer carries a's attributes either: unmerged, it is itself.
    again = await _unmerge(stub, tenant, b_id)
    assert dict(again.restored.attributes) == {"b": 1}
    assert dict(again.survivor.attributes) == {"color": "red", "c": 1}


async def test_concurrent_unmerges_along_a_chain_give_everyone_back_their_own(identity, tenant):
    """a merged into b, b into c; a and b unmerged at the same time, in whichever order the
    database lets them: each ends with its own identities and attributes."""
    channels = [identity.new_channel() for _ in range(2)]
    first, second = (identity_pb2_grpc.IdentityServiceStub(ch) for ch in channels)
    try:
        chains = []
        for n in range(4):
            c = await first.ResolveCustomer(resolve_request(tenant, openid(f"c{n}"), c=n))
            b = await first.ResolveCustomer(resolve_request(tenant, openid(f"b{n}"), b=n))
            a = await first.ResolveCustomer(resolve_request(tenant, openid(f"a{n}"), a=n))
            ids = [x.customer.customer_id for x in (a, b, c)]
            await _merge(first, tenant, ids[1], ids[0])
            await _merge(first, tenant, ids[2], ids[1])
            chains.append(ids)
        await asyncio.gather(
            *(
                call
                for a_id, b_id, _ in chains
                for call in (
                    _unmerge(first, tenant, a_id),
                    _unmerge(second, tenant, b_id),
                )
            )
        )
        for n, ids in enumerate(chains):
            for name, customer_id in zip("abc", ids, strict=True):
                got = await first.GetCustomer(
                    pb.GetCustomerRequest(tenant_id=tenant, customer_id=customer_id)
                )
                assert got.customer.customer_id == customer_id
                assert [i.value for i in got.customer.identities] == [f"{name}{n}"]
                assert dict(got.customer.attributes) == {name: n}
    finally:
        for ch in channels:
            await ch.close()
