"""Fission rewards and customer notices follow identity's merges: a merge moves the merged
customer's rewards and notices to the survivor (a campaign both reached keeps the survivor's and
sets the other aside), an unmerge gives each side its own back (a replay of it changes nothing),
a goal republished under the merged id grants nothing twice, and a forget erases them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from nats.aio.client import Client
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.identity.v1 import identity_pb2 as ipb
from closedloop.identity.v1 import identity_pb2_grpc
from closedloop_identity.main import DEFINITION as IDENTITY
from closedloop_retention.main import DEFINITION
from closedloop_retention.models import FissionRewardRow, NoticeRow
from closedloop_retention.transport.notice_worker import NoticeWorker
from loopkit.uow import UnitOfWork
from loopkit.wechat.sender import SandboxSender
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import (
    RunningService,
    eventually,
    read_events,
    replay_event,
    running_service,
)
from retention_helpers import APP, Stub, activity, balance, lead, publish, tenant


@pytest_asyncio.fixture(loop_scope="session", scope="module", params=["sqlite", "postgres"])
async def retention(
    request: pytest.FixtureRequest,
    nats_server: NatsServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningService]:
    """Retention with its dispatchers off: a notice stays owed until the test sends it."""
    tmp_path = tmp_path_factory.mktemp("retention-merge-fission")
    if request.param == "postgres":
        url = await request.getfixturevalue("postgres").fresh_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/retention.db"
    async with running_service(
        DEFINITION,
        database_url=url,
        nats_url=nats_server.url,
        state_dir=tmp_path,
        sweep_interval_s=0,
        dispatch_interval_s=0,
        sandbox_log="",
    ) as svc:
        yield svc


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
    res = await ids.ResolveCustomer(
        ipb.ResolveCustomerRequest(
            tenant_id=t,
            identities=[c.Identity(kind=c.IDENTITY_KIND_WECHAT_OPENID, scope=APP, value=openid)],
            actor="test",
        )
    )
    return res.customer.customer_id


async def goal(nc: Client, t: str, cid: str, campaign: str, reward: str) -> None:
    event = acq.FissionGoalReached(
        campaign_id=campaign, participant_customer_id=cid, invited=3, goal=3, reward=reward
    )
    await publish(nc, "acquisition", "fission.goal_reached", t, cid, event)


Held = tuple[list[tuple[str, int]], list[tuple[str, str]]]


async def held(svc: RunningService, t: str, cid: str) -> Held:
    """(campaign, points) of the customer's fission rewards and (key, status) of their notices."""

    async def read(session: AsyncSession) -> Held:
        rewards = (
            await session.execute(
                select(FissionRewardRow.campaign_id, FissionRewardRow.points)
                .where(FissionRewardRow.tenant_id == t, FissionRewardRow.participant_id == cid)
                .order_by(FissionRewardRow.campaign_id)
            )
        ).all()
        notices = (
            await session.execute(
                select(NoticeRow.idempotency_key, NoticeRow.status)
                .where(NoticeRow.tenant_id == t, NoticeRow.customer_id == cid)
                .order_by(NoticeRow.idempotency_key)
            )
        ).all()
        return [(r[0], int(r[1])) for r in rewards], [(n[0], n[1]) for n in notices]

    return await UnitOfWork(svc.runtime.sessions).run(read)


async def test_rewards_and_notices_follow_merge_unmerge_and_forget(
    stub: Stub, nats_client: Client, retention: RunningService, identity: RunningService
) -> None:
    ids = identity_pb2_grpc.IdentityServiceStub(identity.channel)
    t = tenant()
    a = await new_customer(ids, t, "o-fa")
    b = await new_customer(ids, t, "o-fb")
    await lead(nats_client, t, a, openid="o-fa")
    await lead(nats_client, t, b, openid="o-fb")
    # Both reached the shared campaign's goal; only B the other one.
    await goal(nats_client, t, a, "camp-both", "points:100")
    await goal(nats_client, t, b, "camp-both", "points:100")
    await goal(nats_client, t, b, "camp-b", "points:30")

    a_own = ([("camp-both", 100)], [(f"fission:camp-both:{a}", "pending")])
    b_own = (
        [("camp-b", 30), ("camp-both", 100)],
        [(f"fission:camp-b:{b}", "pending"), (f"fission:camp-both:{b}", "pending")],
    )

    async def granted() -> bool:
        known = await activity(stub, t, a) is not None and await activity(stub, t, b) is not None
        return (
            known and await held(retention, t, a) == a_own and await held(retention, t, b) == b_own
        )

    await eventually(granted)

    merged = await ids.MergeCustomers(
        ipb.MergeCustomersRequest(tenant_id=t, customer_ids=[a, b], actor="op", reason="same")
    )
    assert merged.survivor.customer_id == a

    async def merged_in() -> bool:
        return await held(retention, t, b) == ([], [])

    await eventually(merged_in)
    # The survivor's reward for the campaign both reached stands for both (B's is set aside);
    # B's other reward and both of B's owed notices are the survivor's now.
    rewards, notices = await held(retention, t, a)
    assert rewards == [("camp-b", 30), ("camp-both", 100)]
    assert sorted(notices) == sorted(a_own[1] + b_own[1])
    assert await balance(stub, t, a) == 230

    # B's goal republished (another envelope) under the merged id: found, not granted again.
    await goal(nats_client, t, b, "camp-b", "points:30")
    await goal(nats_client, t, a, "camp-marker", "points:1")

    async def marker_seen() -> bool:
        return await balance(stub, t, a) == 231

    await eventually(marker_seen)
    a_merged = await held(retention, t, a)
    assert a_merged[0] == [("camp-b", 30), ("camp-both", 100), ("camp-marker", 1)]

    await ids.UnmergeCustomer(
        ipb.UnmergeCustomerRequest(tenant_id=t, customer_id=b, actor="op", reason="two people")
    )

    async def given_back() -> bool:
        return await held(retention, t, b) == b_own

    await eventually(given_back)
    a_after = (
        [("camp-both", 100), ("camp-marker", 1)],
        [(f"fission:camp-both:{a}", "pending"), (f"fission:camp-marker:{a}", "pending")],
    )
    assert await held(retention, t, a) == a_after
    assert await balance(stub, t, b) == 130 and await balance(stub, t, a) == 101

    # The same customer.unmerged delivered again changes nothing.
    [unmerged] = [
        e
        for e in await read_events(nats_client, "IDENTITY", tenant_id=t)
        if e.type == "customer.unmerged"
    ]
    await replay_event(nats_client, unmerged, durable="retention-identity")
    assert await held(retention, t, b) == b_own
    assert await held(retention, t, a) == a_after

    # B's owed notices go to B's own contact.
    worker: NoticeWorker = retention.runtime.parts["notices"]
    await worker.dispatch()
    sender: SandboxSender = retention.runtime.parts["sender"]
    to_b = sorted(m.key for m, _ in sender.sent if m.customer_id == b)
    assert to_b == [f"fission:camp-b:{b}", f"fission:camp-both:{b}"]
    assert {m.key for m, _ in sender.sent if m.customer_id == a} == {
        f"fission:camp-both:{a}",
        f"fission:camp-marker:{a}",
    }

    # Forgetting B leaves none of B's rewards or notices (A's stay).
    await ids.ForgetCustomer(
        ipb.ForgetCustomerRequest(tenant_id=t, customer_id=b, actor="op", reason="asked")
    )

    async def erased() -> bool:
        return await held(retention, t, b) == ([], [])

    await eventually(erased)
    assert len((await held(retention, t, a))[0]) == 2
