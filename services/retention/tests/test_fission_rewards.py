"""Fission goals deliver their reward: acquisition's fission.goal_reached grants the campaign's
points or coupon once and tells the participant through the sender (the gateway in production),
under a key derived from the goal, with consent checked again when the message goes out."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from nats.aio.client import Client
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.retention.v1 import retention_pb2 as pb
from closedloop_retention.main import DEFINITION
from closedloop_retention.notices.repository import NoticeRepository
from closedloop_retention.transport.notice_worker import NoticeWorker
from loopkit.uow import UnitOfWork
from loopkit.wechat.sender import SandboxSender
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import RunningService, eventually, running_service
from retention_helpers import Stub, activity, balance, customer, lead, publish, tenant


@pytest_asyncio.fixture(loop_scope="session", scope="module", params=["sqlite", "postgres"])
async def retention(
    request: pytest.FixtureRequest,
    nats_server: NatsServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningService]:
    """Retention with its periodic dispatchers off: each test sends the due notices itself, so
    what happens between a notice being owed and being sent is the test's to decide."""
    tmp_path = tmp_path_factory.mktemp("retention-fission")
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


async def goal(nc: Client, t: str, cid: str, reward: str, campaign: str = "camp-fx") -> None:
    event = acq.FissionGoalReached(
        campaign_id=campaign, participant_customer_id=cid, invited=3, goal=3, reward=reward
    )
    await publish(nc, "acquisition", "fission.goal_reached", t, cid, event)


async def follower(stub: Stub, nc: Client, t: str, *, consent: bool = True) -> str:
    """A customer retention can message (an openid), with or without consent."""
    cid = customer()
    await lead(nc, t, cid, consent=consent)

    async def known() -> bool:
        return await activity(stub, t, cid) is not None

    await eventually(known)
    return cid


async def notices(svc: RunningService, t: str, cid: str) -> list[tuple[str, str]]:
    """(status, reason) of the customer's notices, as stored."""

    async def read(session: AsyncSession) -> list[tuple[str, str]]:
        return [(n.status, n.reason) for n in await NoticeRepository().of_customer(session, t, cid)]

    return await UnitOfWork(svc.runtime.sessions).run(read)


async def wait_notice(svc: RunningService, t: str, cid: str) -> None:
    async def owed() -> bool:
        return len(await notices(svc, t, cid)) == 1

    await eventually(owed)


def sent_to(svc: RunningService, cid: str) -> list[tuple[str, str]]:
    sender: SandboxSender = svc.runtime.parts["sender"]
    return [(m.key, m.content) for m, _ in sender.sent if m.customer_id == cid]


async def test_a_points_goal_credits_once_and_tells_the_participant(
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    t = tenant()
    cid = await follower(stub, nats_client, t)
    await goal(nats_client, t, cid, "points:300")
    await wait_notice(retention, t, cid)
    assert await balance(stub, t, cid) == 300

    worker: NoticeWorker = retention.runtime.parts["notices"]
    await worker.dispatch()
    [(key, content)] = sent_to(retention, cid)
    assert key == f"fission:camp-fx:{cid}"
    assert "300 points" in content
    assert await notices(retention, t, cid) == [("sent", "")]

    # The goal again (a republish: another envelope): no second credit, no second message.
    await goal(nats_client, t, cid, "points:300")
    await goal(nats_client, t, cid, "points:1", campaign="camp-marker")

    async def marker_seen() -> bool:
        return await balance(stub, t, cid) == 301

    await eventually(marker_seen)
    await worker.dispatch()
    assert [k for k, _ in sent_to(retention, cid)] == [
        f"fission:camp-fx:{cid}",
        f"fission:camp-marker:{cid}",
    ]
    ledger = await stub.GetLoyaltyAccount(
        pb.GetLoyaltyAccountRequest(tenant_id=t, customer_id=cid, ledger_limit=10)
    )
    assert sorted(e.points for e in ledger.ledger if e.source == "fission") == [1, 300]
    assert ledger.lifetime_points == 301  # fission points count towards the tier


async def test_a_coupon_goal_issues_the_coupon(
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    t = tenant()
    cid = await follower(stub, nats_client, t)
    await goal(nats_client, t, cid, "coupon:tpl-fx:7")
    await wait_notice(retention, t, cid)
    account = await stub.GetLoyaltyAccount(
        pb.GetLoyaltyAccountRequest(tenant_id=t, customer_id=cid)
    )
    [coupon] = account.coupons
    assert coupon.template_id == "tpl-fx"
    assert coupon.status == pb.COUPON_STATUS_ISSUED
    valid = coupon.expires_at.ToDatetime() - coupon.issued_at.ToDatetime()
    assert valid == timedelta(days=7)
    await retention.runtime.parts["notices"].dispatch()
    [(_, content)] = sent_to(retention, cid)
    assert "coupon" in content and "7 days" in content


async def test_a_reward_people_hand_over_is_only_announced(
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    t = tenant()
    cid = await follower(stub, nats_client, t)
    await goal(nats_client, t, cid, "A mug")
    await wait_notice(retention, t, cid)
    await retention.runtime.parts["notices"].dispatch()
    [(_, content)] = sent_to(retention, cid)
    assert "A mug" in content
    assert await balance(stub, t, cid) == 0


async def test_consent_is_checked_again_when_the_notice_goes_out(
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    t = tenant()
    leaving = await follower(stub, nats_client, t)
    never = await follower(stub, nats_client, t, consent=False)
    for cid in (leaving, never):
        await goal(nats_client, t, cid, "points:50")
        await wait_notice(retention, t, cid)
    # Owed while they could be messaged; they unsubscribe before it goes out.
    bye = acq.TouchRecorded(touch_id="bye", kind=acq.TOUCH_KIND_UNSUBSCRIBE, channel_id="ch-1")
    await publish(nats_client, "acquisition", "touch.recorded", t, leaving, bye)

    async def unsubscribed() -> bool:
        found = await activity(stub, t, leaving)
        return found is not None and found.unsubscribed

    await eventually(unsubscribed)
    await retention.runtime.parts["notices"].dispatch()
    assert sent_to(retention, leaving) == sent_to(retention, never) == []
    assert await notices(retention, t, leaving) == [("skipped", "unsubscribed")]
    assert await notices(retention, t, never) == [("skipped", "no_consent")]
    # The reward itself is theirs either way.
    assert await balance(stub, t, leaving) == await balance(stub, t, never) == 50


async def test_an_opt_out_stops_the_notice_too(
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    """Consent withdrawn through WithdrawConsent after the notice was owed: it does not go out."""
    t = tenant()
    cid = await follower(stub, nats_client, t)
    await goal(nats_client, t, cid, "points:70")
    await wait_notice(retention, t, cid)
    await stub.WithdrawConsent(pb.WithdrawConsentRequest(tenant_id=t, customer_id=cid))
    await retention.runtime.parts["notices"].dispatch()
    assert sent_to(retention, cid) == []
    # Withdrawing every channel clears the consent itself.
    assert await notices(retention, t, cid) == [("skipped", "no_consent")]
    assert await balance(stub, t, cid) == 70


async def test_a_gateway_outage_keeps_the_notice_owed(
    nats_server: NatsServer,
    nats_client: Client,
    tmp_path_factory: pytest.TempPathFactory,
    retention: RunningService,
    stub: Stub,
) -> None:
    """Retention sending through a gateway that is down: the notice goes back in the queue (the
    next tick retries under the same key), it is neither failed nor lost."""
    tmp = tmp_path_factory.mktemp("retention-gateway-down")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    t = tenant()
    cid = await follower(stub, nats_client, t)
    await goal(nats_client, t, cid, "points:20")
    await wait_notice(retention, t, cid)
    async with running_service(
        DEFINITION,
        database_url=str(retention.runtime.settings.database_url),
        nats_url=nats_server.url,
        state_dir=tmp,
        sweep_interval_s=0,
        dispatch_interval_s=0,
        gateway_url=f"127.0.0.1:{port}",
        gateway_timeout_s=0.5,
    ) as down:
        assert await down.runtime.parts["notices"].dispatch() == 0
    assert await notices(retention, t, cid) == [("pending", "")]
    await retention.runtime.parts["notices"].dispatch()  # the gateway (here the sandbox) is back
    assert await notices(retention, t, cid) == [("sent", "")]
