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
from loopkit_dev.testing import RunningService, eventually, running_service
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

    await ids.ForgetCustomer(
        ipb.ForgetCustomerRequest(tenant_id=t, customer_id=survivor, actor="op", reason="asked")
    )

    async def erased() -> bool:
        return await activity(stub, t, survivor) is None

    await eventually(erased)
    assert await balance(stub, t, survivor) == 0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetLifecycle(pb.GetLifecycleRequest(tenant_id=t, customer_id=survivor))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
