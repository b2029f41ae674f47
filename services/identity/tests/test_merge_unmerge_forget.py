"""Operator merges, unmerge (undo), erasure and the audit trail."""

import uuid

import grpc
import pytest
from sqlalchemy import select

from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1 import identity_events_pb2 as ev
from closedloop.identity.v1 import identity_pb2 as pb
from closedloop_identity.models import AuditRow, MergeRow
from identity_helpers import keys, openid, phone, resolve_request, unionid
from loopkit.events import unpack
from loopkit_dev.testing import eventually, read_events


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


async def test_unmerge_gives_back_what_came_with_the_merged_customer(stub, tenant, nats_client):
    a = await stub.ResolveCustomer(resolve_request(tenant, unionid("u-a"), phone("13800138000")))
    b = await stub.ResolveCustomer(resolve_request(tenant, openid("o-b"), city="Xi'an"))
    a_id, b_id = a.customer.customer_id, b.customer.customer_id
    merged = await stub.MergeCustomers(
        pb.MergeCustomersRequest(
            tenant_id=tenant, customer_ids=[b_id, a_id], actor="ops:alice", reason="same person"
        )
    )
    assert merged.survivor.customer_id == a_id and list(merged.merged_ids) == [b_id]
    assert len(merged.survivor.identities) == 3
    # After the merge, a new identity arrives on the survivor: it stays there on unmerge.
    await stub.LinkIdentity(
        pb.LinkIdentityRequest(tenant_id=tenant, customer_id=a_id, identity=openid("o-a"))
    )
    undone = await stub.UnmergeCustomer(
        pb.UnmergeCustomerRequest(
            tenant_id=tenant, customer_id=b_id, actor="ops:bob", reason="wrong merge"
        )
    )
    assert undone.restored.customer_id == b_id
    assert undone.restored.status == pb.CUSTOMER_STATUS_ACTIVE
    assert keys(undone.restored) == {(c.IDENTITY_KIND_WECHAT_OPENID, "wx-app-1", "o-b")}
    assert keys(undone.survivor) == {
        (c.IDENTITY_KIND_WECHAT_UNIONID, "", "u-a"),
        (c.IDENTITY_KIND_PHONE, "", "+8613800138000"),
        (c.IDENTITY_KIND_WECHAT_OPENID, "wx-app-1", "o-a"),
    }
    again = await stub.ResolveCustomer(resolve_request(tenant, openid("o-b")))
    assert again.customer.customer_id == b_id

    history = await stub.GetCustomerHistory(
        pb.GetCustomerHistoryRequest(tenant_id=tenant, customer_id=a_id)
    )
    actions = [(e.action, e.actor) for e in history.entries]
    assert ("merged", "ops:alice") in actions and ("unmerged_from", "ops:bob") in actions

    async def unmerged():
        events = await read_events(nats_client, "IDENTITY", tenant_id=tenant)
        return [unpack(e, ev.CustomerUnmerged) for e in events if e.type == "customer.unmerged"]

    await eventually(unmerged)
    [event] = await unmerged()
    assert (event.restored_id, event.survivor_id) == (b_id, a_id)


async def test_history_records_the_identity_that_triggered_a_merge(stub, tenant):
    a = await stub.ResolveCustomer(resolve_request(tenant, unionid("u-1")))
    b = await stub.ResolveCustomer(resolve_request(tenant, openid("o-1")))
    await stub.ResolveCustomer(
        resolve_request(tenant, openid("o-1"), unionid("u-1", verified=True))
    )
    history = await stub.GetCustomerHistory(
        pb.GetCustomerHistoryRequest(tenant_id=tenant, customer_id=b.customer.customer_id)
    )
    merged = [e for e in history.entries if e.action == "merged"]
    assert len(merged) == 1
    assert merged[0].customer_id == a.customer.customer_id
    assert merged[0].other_customer_id == b.customer.customer_id
    assert merged[0].identity.value == "u-1"
    assert merged[0].actor == "test"


async def test_forget_erases_identities_everywhere_and_publishes(
    stub, tenant, identity, nats_client
):
    a = await stub.ResolveCustomer(resolve_request(tenant, unionid("u-f"), name="Li Lei"))
    b = await stub.ResolveCustomer(resolve_request(tenant, phone("13900139000")))
    await stub.MergeCustomers(
        pb.MergeCustomersRequest(
            tenant_id=tenant, customer_ids=[a.customer.customer_id, b.customer.customer_id]
        )
    )
    gone = await stub.ForgetCustomer(
        pb.ForgetCustomerRequest(
            tenant_id=tenant, customer_id=b.customer.customer_id, reason="PIPL request"
        )
    )
    assert set(gone.forgotten_ids) == {a.customer.customer_id, b.customer.customer_id}
    for cid in gone.forgotten_ids:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetCustomer(pb.GetCustomerRequest(tenant_id=tenant, customer_id=cid))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    found = await stub.SearchCustomers(
        pb.SearchCustomersRequest(tenant_id=tenant, value="13900139000")
    )
    assert list(found.customers) == []
    # No personal value is left in the audit trail or merge records.
    async with identity.runtime.sessions() as session:
        values = (
            (
                await session.execute(
                    select(AuditRow.identity_value).where(AuditRow.tenant_id == tenant)
                )
            )
            .scalars()
            .all()
        )
        merges = (
            await session.execute(
                select(MergeRow.trigger, MergeRow.taken_attributes).where(
                    MergeRow.tenant_id == tenant
                )
            )
        ).all()
    assert set(values) == {None} and set(merges) == {(None, None)}
    # The same person coming back is a new customer.
    back = await stub.ResolveCustomer(resolve_request(tenant, unionid("u-f")))
    assert back.created
    # Erasure is idempotent.
    again = await stub.ForgetCustomer(
        pb.ForgetCustomerRequest(tenant_id=tenant, customer_id=a.customer.customer_id)
    )
    assert set(again.forgotten_ids) == set(gone.forgotten_ids)

    async def forgotten():
        events = await read_events(nats_client, "IDENTITY", tenant_id=tenant)
        return [unpack(e, ev.CustomerForgotten) for e in events if e.type == "customer.forgotten"]

    await eventually(forgotten)
    [event] = await forgotten()
    assert set(event.forgotten_ids) == set(gone.forgotten_ids)


async def test_link_and_unlink(stub, tenant):
    a = await stub.ResolveCustomer(resolve_request(tenant, openid("o-1")))
    cid = a.customer.customer_id
    linked = await stub.LinkIdentity(
        pb.LinkIdentityRequest(tenant_id=tenant, customer_id=cid, identity=phone("13700137000"))
    )
    assert (c.IDENTITY_KIND_PHONE, "", "+8613700137000") in keys(linked.customer)
    again = await stub.LinkIdentity(
        pb.LinkIdentityRequest(tenant_id=tenant, customer_id=cid, identity=phone("137 0013 7000"))
    )
    assert len(again.customer.identities) == 2  # idempotent
    unlinked = await stub.UnlinkIdentity(
        pb.UnlinkIdentityRequest(tenant_id=tenant, customer_id=cid, identity=phone("13700137000"))
    )
    assert keys(unlinked.customer) == {(c.IDENTITY_KIND_WECHAT_OPENID, "wx-app-1", "o-1")}
    listed = await stub.ListIdentities(pb.ListIdentitiesRequest(tenant_id=tenant, customer_id=cid))
    assert [i.value for i in listed.identities] == ["o-1"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.UnlinkIdentity(
            pb.UnlinkIdentityRequest(
                tenant_id=tenant, customer_id=cid, identity=phone("13700137000")
            )
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_verified_phone_upgrades_a_known_unverified_one(stub, tenant):
    await stub.ResolveCustomer(resolve_request(tenant, phone("13600136000", verified=False)))
    res = await stub.ResolveCustomer(resolve_request(tenant, phone("13600136000", verified=True)))
    assert [i.verified for i in res.customer.identities] == [True]
    # Written, not only answered: the next resolve reads it back.
    again = await stub.ResolveCustomer(
        resolve_request(tenant, phone("13600136000", verified=False))
    )
    assert [i.verified for i in again.customer.identities] == [True]
