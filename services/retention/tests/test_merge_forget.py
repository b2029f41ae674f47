"""customer.merged from the real identity service: activity, ledgers and tags move to the
survivor with nothing lost or doubled; customer.forgotten erases what retention holds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from nats.aio.client import Client

from closedloop.events.v1 import retention_events_pb2 as ev
from closedloop.identity.v1 import identity_pb2 as ipb
from closedloop.identity.v1 import identity_pb2_grpc
from closedloop.retention.v1 import retention_pb2 as pb
from closedloop_identity.main import DEFINITION as IDENTITY
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import (
    RunningService,
    eventually,
    read_events,
    replay_event,
    running_service,
)
from retention_helpers import APP, Stub, activity, balance, days_ago, lead, paid, tenant


@pytest_asyncio.fixture(loop_scope="session")
async def identity(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[RunningService]:
    async with running_service(
        IDENTITY,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/identity.db",
        nats_url=nats_server.url,
        state_dir=tmp_path,
    ) as svc:
        yield svc


async def new_customer(ids: identity_pb2_grpc.IdentityServiceStub, t: str, openid: str) -> str:
    from closedloop.common.v1 import common_pb2 as c

    res = await ids.ResolveCustomer(
        ipb.ResolveCustomerRequest(
            tenant_id=t,
            identities=[c.Identity(kind=c.IDENTITY_KIND_WECHAT_OPENID, scope=APP, value=openid)],
            actor="test",
        )
    )
    return res.customer.customer_id


async def rescored(stub: Stub, t: str, *customers: str) -> list[tuple[int, ...]]:
    """Rescore the tenant (ListTopCustomers with recompute), then each customer's RFM scores
    (recency, frequency, monetary, score, top)."""
    await stub.ListTopCustomers(pb.ListTopCustomersRequest(tenant_id=t, recompute=True, limit=10))
    out = []
    for cid in customers:
        v = (
            await stub.GetCustomerValue(pb.GetCustomerValueRequest(tenant_id=t, customer_id=cid))
        ).value
        out.append((v.recency, v.frequency, v.monetary, v.rfm_score, int(v.top_customer)))
    return out


async def test_merge_combines_without_double_counting_and_forget_erases(
    stub: Stub, nats_client: Client, identity: RunningService
) -> None:
    ids = identity_pb2_grpc.IdentityServiceStub(identity.channel)
    t = tenant()
    a = await new_customer(ids, t, "o-a")
    b = await new_customer(ids, t, "o-b")
    await lead(nats_client, t, a, tags=("vip",), at=days_ago(40))
    await lead(nats_client, t, b, tags=("vip", "tea"), at=days_ago(30))
    await paid(nats_client, t, a, 100, at=days_ago(20))
    await paid(nats_client, t, b, 50, at=days_ago(10))
    await paid(nats_client, t, b, 30, at=days_ago(5))

    async def loaded() -> bool:
        first, second = await activity(stub, t, a), await activity(stub, t, b)
        tagged = first is not None and second is not None and len(second.tags) == 2
        return tagged and await balance(stub, t, a) == 100 and await balance(stub, t, b) == 80

    await eventually(loaded)
    await stub.RedeemPoints(
        pb.RedeemPointsRequest(tenant_id=t, customer_id=b, points=30, idempotency_key="b-1")
    )

    merged = await ids.MergeCustomers(
        ipb.MergeCustomersRequest(tenant_id=t, customer_ids=[a, b], actor="op", reason="same")
    )
    survivor = merged.survivor.customer_id
    gone = b if survivor == a else a

    async def moved() -> bool:
        return await activity(stub, t, gone) is None

    await eventually(moved)
    act = await activity(stub, t, survivor)
    assert act is not None
    assert act.order_count == 3 and act.revenue_minor == 18000
    assert sorted(act.tags) == ["tea", "vip"]
    account = await stub.GetLoyaltyAccount(
        pb.GetLoyaltyAccountRequest(tenant_id=t, customer_id=survivor)
    )
    assert account.balance == 150 == sum(e.points for e in account.ledger)
    assert account.lifetime_points == 180
    assert await balance(stub, t, gone) == 0
    life = await stub.GetLifecycle(pb.GetLifecycleRequest(tenant_id=t, customer_id=survivor))
    # Orders 20, 10 and 5 days ago: a 7.5-day cycle, last order 5 days ago → stable.
    assert life.stage == ev.LIFECYCLE_STAGE_STABLE
    # RFM: the survivor is the tenant's one buyer (the merged one's scores went with it).
    assert await rescored(stub, t, survivor) == [(1, 1, 1, 111, 1)]

    await ids.ForgetCustomer(
        ipb.ForgetCustomerRequest(tenant_id=t, customer_id=survivor, actor="op", reason="asked")
    )

    async def erased() -> bool:
        return await activity(stub, t, survivor) is None

    await eventually(erased)
    assert await balance(stub, t, survivor) == 0
    # Its RFM row went too: nobody left to score or list.
    top = await stub.ListTopCustomers(
        pb.ListTopCustomersRequest(tenant_id=t, recompute=True, limit=10)
    )
    assert list(top.customers) == []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetLifecycle(pb.GetLifecycleRequest(tenant_id=t, customer_id=survivor))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_unmerge_gives_each_side_its_own_and_orders_follow_the_alias(
    stub: Stub, nats_client: Client, identity: RunningService
) -> None:
    ids = identity_pb2_grpc.IdentityServiceStub(identity.channel)
    t = tenant()
    a = await new_customer(ids, t, "o-ua")
    b = await new_customer(ids, t, "o-ub")
    await lead(nats_client, t, a, tags=("vip",), at=days_ago(40))
    await lead(nats_client, t, b, tags=("vip", "tea"), at=days_ago(30))
    await paid(nats_client, t, a, 100, at=days_ago(20))
    await paid(nats_client, t, b, 50, at=days_ago(10))
    await paid(nats_client, t, b, 30, at=days_ago(5))

    async def loaded() -> bool:
        second = await activity(stub, t, b)
        tagged = second is not None and len(second.tags) == 2  # the leads are in too
        return tagged and await balance(stub, t, a) == 100 and await balance(stub, t, b) == 80

    await eventually(loaded)
    await stub.RedeemPoints(
        pb.RedeemPointsRequest(tenant_id=t, customer_id=b, points=30, idempotency_key="ub-1")
    )
    merged = await ids.MergeCustomers(
        ipb.MergeCustomersRequest(tenant_id=t, customer_ids=[a, b], actor="op", reason="same")
    )
    assert merged.survivor.customer_id == a

    async def merged_in() -> bool:
        return await activity(stub, t, b) is None and await balance(stub, t, a) == 150

    await eventually(merged_in)
    # An order still naming the merged-away id is the survivor's; so is one of its own.
    await paid(nats_client, t, b, 20, at=days_ago(2))
    await paid(nats_client, t, a, 10, at=days_ago(1))

    async def credited() -> bool:
        return await balance(stub, t, a) == 180

    await eventually(credited)
    assert await activity(stub, t, b) is None

    await ids.UnmergeCustomer(
        ipb.UnmergeCustomerRequest(tenant_id=t, customer_id=b, actor="op", reason="two people")
    )

    async def given_back() -> bool:
        return await activity(stub, t, b) is not None

    await eventually(given_back)

    async def sides() -> tuple[object, ...]:
        out: list[object] = []
        for cid in (a, b):
            acct = await stub.GetLoyaltyAccount(
                pb.GetLoyaltyAccountRequest(tenant_id=t, customer_id=cid, ledger_limit=50)
            )
            act = await activity(stub, t, cid)
            assert act is not None
            assert acct.balance == sum(e.points for e in acct.ledger)
            out.append(
                (
                    acct.balance,
                    acct.lifetime_points,
                    acct.tier,
                    act.order_count,
                    act.revenue_minor,
                    sorted(act.tags),
                )
            )
        return tuple(out)

    before = await sides()
    (a_side, b_side) = before
    # B: its two orders (80) less what it redeemed; A: its own order, the one paid under B's id
    # after the merge and its own later one.
    assert a_side[:2] == (130, 130) and a_side[3:] == (3, 13000, ["vip"])
    assert b_side[:2] == (50, 80) and b_side[3:] == (2, 8000, ["tea", "vip"])
    # RFM from each side's own orders again: A (3 orders, 130, last a day ago) above B (2,
    # 80, 5 days ago) on every dimension.
    assert await rescored(stub, t, a, b) == [(3, 3, 3, 333, 1), (1, 1, 1, 111, 0)]

    # The same customer.unmerged delivered again changes nothing.
    [unmerged] = [
        e
        for e in await read_events(nats_client, "IDENTITY", tenant_id=t)
        if e.type == "customer.unmerged"
    ]
    await replay_event(nats_client, unmerged, durable="retention-identity")
    assert await sides() == before

    # B's id is B's again.
    await paid(nats_client, t, b, 5)

    async def b_credited() -> bool:
        return await balance(stub, t, b) == 55

    await eventually(b_credited)
    assert await balance(stub, t, a) == 130


async def test_unmerge_when_the_survivor_had_nothing_of_its_own(
    stub: Stub, nats_client: Client, identity: RunningService
) -> None:
    """The merged customer's activity row and account moved whole; the survivor's order after
    the merge stays the survivor's, in a row and an account of its own."""
    ids = identity_pb2_grpc.IdentityServiceStub(identity.channel)
    t = tenant()
    a = await new_customer(ids, t, "o-na")
    b = await new_customer(ids, t, "o-nb")
    await paid(nats_client, t, b, 50, at=days_ago(10))

    async def loaded() -> bool:
        return await balance(stub, t, b) == 50

    await eventually(loaded)
    await ids.MergeCustomers(
        ipb.MergeCustomersRequest(tenant_id=t, customer_ids=[a, b], actor="op", reason="same")
    )

    async def merged_in() -> bool:
        return await activity(stub, t, b) is None and await balance(stub, t, a) == 50

    await eventually(merged_in)
    await paid(nats_client, t, a, 10, at=days_ago(1))

    async def credited() -> bool:
        return await balance(stub, t, a) == 60

    await eventually(credited)
    await ids.UnmergeCustomer(
        ipb.UnmergeCustomerRequest(tenant_id=t, customer_id=b, actor="op", reason="two people")
    )

    async def given_back() -> bool:
        return await activity(stub, t, b) is not None

    await eventually(given_back)
    mine, theirs = await activity(stub, t, a), await activity(stub, t, b)
    assert mine is not None and theirs is not None
    assert (mine.order_count, mine.revenue_minor, await balance(stub, t, a)) == (1, 1000, 10)
    assert (theirs.order_count, theirs.revenue_minor, await balance(stub, t, b)) == (1, 5000, 50)
    # RFM: A ordered later, B spent more; one order each.
    assert await rescored(stub, t, a, b) == [(3, 1, 1, 311, 0), (1, 1, 3, 113, 1)]
