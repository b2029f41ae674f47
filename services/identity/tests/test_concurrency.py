"""Concurrent resolves of overlapping identities end with one customer and one merge history."""

import asyncio
import uuid

import pytest
from sqlalchemy import select, update

from closedloop.identity.v1 import identity_pb2 as pb
from closedloop.identity.v1 import identity_pb2_grpc
from closedloop_identity.models import AuditRow, CustomerRow, IdentityRow, MergeRow
from identity_helpers import openid, phone, resolve_request, unionid
from loopkit_dev.testing import answer_of, eventually, read_events

CALLERS = 50


def _identities(i: int) -> list:
    shared = [
        [phone("13800138000")],
        [unionid("u-shared", verified=True)],
        [phone("13800138000"), unionid("u-shared", verified=True)],
    ][i % 3]
    return [openid(f"o-{i}"), *shared]


@pytest.mark.parametrize("identity", ["sqlite"], indirect=True)
async def test_the_read_calls_answer_beside_an_open_write_on_sqlite(identity, stub):
    """Get, List and Search calls read in a deferred transaction (`UnitOfWork.read`): on SQLite
    they answer while another connection holds the write lock. They began IMMEDIATE, so each
    queued behind the writer (up to the 30 s busy timeout, then again on each retry)."""
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    made = await stub.ResolveCustomer(resolve_request(tenant, phone("13800138001"), tier="gold"))
    customer_id = made.customer.customer_id
    async with identity.runtime.sessions() as writer, writer.begin():
        changed = update(CustomerRow).where(CustomerRow.id == customer_id)
        await writer.execute(changed.values(attributes={"tier": "changed"}))  # the write lock
        got = await answer_of(
            stub.GetCustomer(pb.GetCustomerRequest(tenant_id=tenant, customer_id=customer_id))
        )
        assert dict(got.customer.attributes) == {"tier": "gold"}  # what was committed
        search = pb.SearchCustomersRequest(tenant_id=tenant, value="13800138001")
        found = await answer_of(stub.SearchCustomers(search))
        assert [c.customer_id for c in found.customers] == [customer_id]
        listed = pb.ListIdentitiesRequest(tenant_id=tenant, customer_id=customer_id)
        assert len((await answer_of(stub.ListIdentities(listed))).identities) == 1
        history = pb.GetCustomerHistoryRequest(tenant_id=tenant, customer_id=customer_id)
        assert (await answer_of(stub.GetCustomerHistory(history))).entries
        await answer_of(stub.GetMergePolicy(pb.GetMergePolicyRequest(tenant_id=tenant)))


async def test_fifty_concurrent_overlapping_resolves(identity, nats_client):
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    # Several channels, so calls really arrive in parallel rather than queued on one connection.

    channels = [identity.new_channel() for _ in range(5)]
    stubs = [identity_pb2_grpc.IdentityServiceStub(ch) for ch in channels]
    try:
        # Two customers exist before the burst; callers that present both identities must merge
        # them exactly once while the others attach to one or the other.
        await stubs[0].ResolveCustomer(resolve_request(tenant, phone("13800138000")))
        await stubs[0].ResolveCustomer(resolve_request(tenant, unionid("u-shared")))
        results = await asyncio.gather(
            *[
                stubs[i % 5].ResolveCustomer(resolve_request(tenant, *_identities(i)))
                for i in range(CALLERS)
            ]
        )
        answers = {r.customer.customer_id for r in results}
        survivors = {
            (
                await stubs[0].GetCustomer(pb.GetCustomerRequest(tenant_id=tenant, customer_id=cid))
            ).customer.customer_id
            for cid in answers
        }
    finally:
        for ch in channels:
            await ch.close()
    assert len(survivors) == 1, survivors
    [survivor] = survivors

    async with identity.runtime.sessions() as session:
        customers = (
            (await session.execute(select(CustomerRow).where(CustomerRow.tenant_id == tenant)))
            .scalars()
            .all()
        )
        identities = (
            (await session.execute(select(IdentityRow).where(IdentityRow.tenant_id == tenant)))
            .scalars()
            .all()
        )
        merges = (
            (await session.execute(select(MergeRow).where(MergeRow.tenant_id == tenant)))
            .scalars()
            .all()
        )
    live = [c for c in customers if c.status == "active"]
    assert [c.id for c in live] == [survivor]
    # Every identity ended on the survivor: 50 openids, the phone and the unionid.
    assert len(identities) == CALLERS + 2
    assert {i.customer_id for i in identities} == {survivor}
    # One merge history: every other customer ever created was merged exactly once, into a chain
    # that ends at the survivor.
    merged_ids = [m.merged_id for m in merges]
    assert merged_ids, "the burst should have merged the two seeded customers"
    assert sorted(merged_ids) == sorted(c.id for c in customers if c.id != survivor)
    by_id = {c.id: c for c in customers}
    for cid in merged_ids:
        hops, cur = 0, by_id[cid]
        while cur.merged_into is not None and hops < 10:
            cur, hops = by_id[cur.merged_into], hops + 1
        assert cur.id == survivor

    async def events_match():
        events = await read_events(nats_client, "IDENTITY", tenant_id=tenant)
        created = sum(e.type == "customer.created" for e in events)
        merged = sum(e.type == "customer.merged" for e in events)
        return (created, merged) == (len(customers), len(merges))

    await eventually(events_match)


async def test_concurrent_first_resolves_of_one_new_person_create_one_customer(
    identity, nats_client
):
    # Nobody holds these yet: every caller tries to create, all but one lose the race on the
    # unique identity key, run again and find the winner.
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    channels = [identity.new_channel() for _ in range(5)]
    stubs = [identity_pb2_grpc.IdentityServiceStub(ch) for ch in channels]
    try:
        results = await asyncio.gather(
            *[
                stubs[i % 5].ResolveCustomer(
                    resolve_request(tenant, openid("o-new"), phone("13900139000"))
                )
                for i in range(20)
            ]
        )
    finally:
        for ch in channels:
            await ch.close()
    assert len({r.customer.customer_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    async with identity.runtime.sessions() as session:
        customers = (
            (await session.execute(select(CustomerRow.id).where(CustomerRow.tenant_id == tenant)))
            .scalars()
            .all()
        )
        audited = (
            (
                await session.execute(
                    select(AuditRow.action).where(
                        AuditRow.tenant_id == tenant, AuditRow.action == "created"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert len(customers) == 1 and len(audited) == 1

    async def one_created():
        events = await read_events(nats_client, "IDENTITY", tenant_id=tenant)
        return [e.type for e in events] == ["customer.created"]

    await eventually(one_created)
