"""GetCustomer360: one call with everything retention knows of a customer, under the id the real
identity service keeps for them (merges followed), erased with them; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
import pytest_asyncio
from nats.aio.client import Client
from sqlalchemy import text
from ulid import ULID

from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.events.v1 import conversion_events_pb2 as conv
from closedloop.events.v1 import referral_events_pb2 as ref
from closedloop.events.v1 import retention_events_pb2 as ev
from closedloop.identity.v1 import identity_pb2 as ipb
from closedloop.identity.v1 import identity_pb2_grpc
from closedloop.retention.v1 import retention_pb2 as pb
from closedloop.retention.v1 import retention_pb2_grpc
from closedloop_identity.main import DEFINITION as IDENTITY
from closedloop_retention.main import DEFINITION as RETENTION
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import PostgresServer, RunningService, eventually, running_service
from retention_helpers import APP, days_ago, paid, publish, rpc_error, tenant

C360_TABLES = (
    "c360_leads",
    "c360_followups",
    "c360_orders",
    "c360_referrals",
    "c360_rewards",
    "c360_timeline",
)


@dataclass
class Stack:
    identity: RunningService
    retention: RunningService

    @property
    def ids(self) -> identity_pb2_grpc.IdentityServiceStub:
        return identity_pb2_grpc.IdentityServiceStub(self.identity.channel)

    @property
    def stub(self) -> retention_pb2_grpc.RetentionServiceStub:
        return retention_pb2_grpc.RetentionServiceStub(self.retention.channel)


@pytest_asyncio.fixture(loop_scope="session", scope="module", params=["sqlite", "postgres"])
async def stack(
    request: pytest.FixtureRequest,
    nats_server: NatsServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    """Identity and retention (which asks identity who an id stands for) on one backend."""
    tmp = tmp_path_factory.mktemp("c360")
    if request.param == "postgres":
        pg: PostgresServer = request.getfixturevalue("postgres")
        urls = [await pg.fresh_database(), await pg.fresh_database()]
    else:
        urls = [f"sqlite+aiosqlite:///{tmp}/identity.db", f"sqlite+aiosqlite:///{tmp}/ret.db"]
    async with (
        running_service(
            IDENTITY, database_url=urls[0], nats_url=nats_server.url, state_dir=tmp
        ) as identity,
        running_service(
            RETENTION,
            database_url=urls[1],
            nats_url=nats_server.url,
            state_dir=tmp,
            identity_url=identity.grpc_target,
            sweep_interval_s=0,
            dispatch_interval_s=0,
            sandbox_log="",
        ) as retention,
    ):
        yield Stack(identity, retention)


async def new_customer(stack: Stack, t: str, openid: str) -> str:
    res = await stack.ids.ResolveCustomer(
        ipb.ResolveCustomerRequest(
            tenant_id=t,
            identities=[c.Identity(kind=c.IDENTITY_KIND_WECHAT_OPENID, scope=APP, value=openid)],
            actor="test",
        )
    )
    return str(res.customer.customer_id)


async def view(stack: Stack, t: str, cid: str) -> pb.GetCustomer360Response:
    return await stack.stub.GetCustomer360(pb.GetCustomer360Request(tenant_id=t, customer_id=cid))


# The activity model's tables keyed by customer (the other events' effects besides the 360).
ACTIVITY_TABLES = (
    "activity",
    "customer_value",
    "orders",
    "order_items",
    "customer_tags",
    "stage_changes",
    "loyalty_accounts",
    "points_ledger",
)


async def rows_naming(stack: Stack, t: str, cid: str) -> list[str]:
    """The 360 tables with a row of this tenant that names the customer in any column."""
    found = []
    async with stack.retention.runtime.sessions() as session:
        for table in C360_TABLES:
            rows = (
                await session.execute(text(f"SELECT * FROM {table} WHERE tenant_id = :t"), {"t": t})
            ).all()
            if any(cid in str(v) for row in rows for v in row):
                found.append(table)
    return found


async def lead(
    nc: Client,
    t: str,
    cid: str,
    lead_id: str,
    *,
    channel: str,
    campaign: str = "camp-1",
    referrer: str = "",
    code: str = "",
    at_days: float,
) -> None:
    await publish(
        nc,
        "acquisition",
        "lead.captured",
        t,
        cid,
        acq.LeadCaptured(
            lead_id=lead_id,
            campaign_id=campaign,
            channel_id=channel,
            attribution=acq.Attribution(
                first_channel_id=channel,
                first_campaign_id=campaign,
                channel_kind="qr_permanent",
                referrer_customer_id=referrer,
                referral_code=code,
            ),
            consent_granted=True,
            identities=[c.Identity(kind=c.IDENTITY_KIND_WECHAT_OPENID, scope=APP, value="o-x")],
        ),
        at=days_ago(at_days),
    )


async def test_one_call_shows_lead_rep_followup_order_and_referral(
    stack: Stack, nats_client: Client
) -> None:
    t = tenant()
    referrer = await new_customer(stack, t, "o-referrer")
    newcomer = await new_customer(stack, t, "o-newcomer")
    nc = nats_client
    await lead(nc, t, referrer, "lead-r", channel="ch-poster", at_days=30)
    await publish(
        nc,
        "referral",
        "share.recorded",
        t,
        referrer,
        ref.ShareRecorded(share_id="sh-1", code="CODE-R", target=ref.SHARE_TARGET_MOMENT),
        at=days_ago(20),
    )
    await lead(
        nc, t, newcomer, "lead-n", channel="ch-share", campaign="camp-9",
        referrer=referrer, code="CODE-R", at_days=10,
    )  # fmt: skip
    await publish(
        nc,
        "conversion",
        "lead.assigned",
        t,
        newcomer,
        conv.LeadAssigned(lead_id="lead-n", rep_id="rep-7", rule="round_robin"),
        at=days_ago(9),
    )
    followup = conv.FollowUpLogged(
        follow_up_id="fu-1", rep_id="rep-7", kind=conv.FOLLOW_UP_KIND_CALL, lead_id="lead-n"
    )
    await publish(nc, "conversion", "followup.logged", t, newcomer, followup, at=days_ago(8))
    await paid(nc, t, newcomer, 88, order_id="ord-1", rep="rep-7", at=days_ago(7))
    await publish(
        nc,
        "referral",
        "referral.converted",
        t,
        newcomer,
        ref.ReferralConverted(referral_id="rf-1", referrer_customer_id=referrer, order_id="ord-1"),
        at=days_ago(6),
    )
    grant = ref.RewardGranted(
        reward_id="rw-1", referral_id="rf-1", kind=ref.REWARD_KIND_POINTS, points=100, level=1
    )
    await publish(nc, "referral", "reward.granted", t, referrer, grant, at=days_ago(5))

    async def complete() -> bool:
        a = await view(stack, t, newcomer)
        b = await view(stack, t, referrer)
        captured = bool(a.leads and a.leads[0].HasField("captured_at") and b.referral.codes)
        return captured and bool(a.referral.referral_converted and b.referral.rewards)

    await eventually(complete)
    # The same facts again in new envelopes (a producer's retry): nothing doubles. A marker
    # follow-up after them on the same stream says when they have been handled.
    await paid(nc, t, newcomer, 88, order_id="ord-1", rep="rep-7", at=days_ago(7))
    await publish(nc, "conversion", "followup.logged", t, newcomer, followup, at=days_ago(8))
    mark = conv.FollowUpLogged(
        follow_up_id="fu-mark", rep_id="rep-7", kind=conv.FOLLOW_UP_KIND_NOTE
    )
    await publish(nc, "conversion", "followup.logged", t, newcomer, mark, at=days_ago(1))

    async def marked() -> bool:
        return any(f.follow_up_id == "fu-mark" for f in (await view(stack, t, newcomer)).follow_ups)

    await eventually(marked)

    got = await view(stack, t, newcomer)
    assert got.customer_id == newcomer and got.requested_id == ""
    assert [i.value for i in got.identities] == ["o-newcomer"]
    (lead_view,) = got.leads
    assert (lead_view.lead_id, lead_view.channel_id, lead_view.campaign_id) == (
        "lead-n",
        "ch-share",
        "camp-9",
    )
    assert (lead_view.rep_id, lead_view.referrer_customer_id, lead_view.referral_code) == (
        "rep-7",
        referrer,
        "CODE-R",
    )
    assert got.owner_rep_id == "rep-7"
    assert [(f.follow_up_id, f.kind, f.rep_id) for f in got.follow_ups] == [
        ("fu-1", "call", "rep-7"),
        ("fu-mark", "note", "rep-7"),
    ]
    assert [
        (o.order_id, o.amount.amount_minor, o.amount.currency, o.rep_id) for o in got.orders
    ] == [("ord-1", 8800, "CNY", "rep-7")]
    assert got.stage == ev.LIFECYCLE_STAGE_DEVELOPMENT
    assert got.activity.order_count == 1 and got.value.order_count == 1
    assert got.points_balance > 0 and got.tier.name
    assert got.referral.referred_by_customer_id == referrer
    assert got.referral.referred_by_code == "CODE-R" and got.referral.referral_converted
    kinds = [e.kind for e in got.timeline]
    # fu-1 once (its copy added nothing) and the marker; the order once
    expected = {"lead.captured": 1, "lead.assigned": 1, "followup.logged": 2, "order.paid": 1}
    assert {k: kinds.count(k) for k in expected} == expected, kinds
    assert "stage.changed" in kinds and "referral.converted" in kinds
    times = [e.at.ToDatetime() for e in got.timeline]
    assert times == sorted(times)
    assert all("o-newcomer" not in e.summary for e in got.timeline)
    assert all(e.service for e in got.timeline)

    await check_referrer(stack, t, referrer, newcomer)


async def check_referrer(stack: Stack, t: str, referrer: str, newcomer: str) -> None:
    theirs = await view(stack, t, referrer)
    assert list(theirs.referral.codes) == ["CODE-R"]
    assert list(theirs.referral.referred_customer_ids) == [newcomer]
    assert theirs.referral.referrals_converted == 1
    assert theirs.referral.referred_by_customer_id == ""
    assert [(w.reward_id, w.kind, w.points) for w in theirs.referral.rewards] == [
        ("rw-1", "points", 100)
    ]
    assert theirs.points_balance == 100
    assert [x.channel_id for x in theirs.leads] == ["ch-poster"]


async def test_a_merged_id_answers_the_survivor(stack: Stack, nats_client: Client) -> None:
    t = tenant()
    a = await new_customer(stack, t, "o-a")
    b = await new_customer(stack, t, "o-b")
    await lead(nats_client, t, a, "lead-a", channel="ch-a", at_days=9)
    await paid(nats_client, t, b, 20, order_id="ord-b", at=days_ago(3))

    async def both_in() -> bool:
        return bool((await view(stack, t, a)).leads and (await view(stack, t, b)).orders)

    await eventually(both_in)
    merged = await stack.ids.MergeCustomers(
        ipb.MergeCustomersRequest(tenant_id=t, customer_ids=[a, b], actor="test", reason="same")
    )
    survivor = merged.survivor.customer_id
    (gone,) = merged.merged_ids

    async def moved() -> bool:
        # the merge reached retention: its rows are the survivor's now
        return not await rows_naming(stack, t, gone)

    await eventually(moved)
    got = await view(stack, t, gone)
    assert got.customer_id == survivor and got.requested_id == gone
    assert list(got.merged_ids) == [gone]
    assert sorted(i.value for i in got.identities) == ["o-a", "o-b"]
    assert [x.lead_id for x in got.leads] == ["lead-a"]
    assert [o.order_id for o in got.orders] == ["ord-b"]
    assert got.activity.customer_id == survivor and got.activity.order_count == 1
    assert (await view(stack, t, survivor)).customer_id == survivor

    # An unmerge gives each side its own rows back (the merge logged the 360's moves too).
    await stack.ids.UnmergeCustomer(
        ipb.UnmergeCustomerRequest(tenant_id=t, customer_id=gone, actor="test", reason="two")
    )

    async def given_back() -> bool:
        return bool(await rows_naming(stack, t, gone))

    await eventually(given_back)
    of_a, of_b = await view(stack, t, a), await view(stack, t, b)
    assert of_a.customer_id == a and of_b.customer_id == b
    assert [x.lead_id for x in of_a.leads] == ["lead-a"] and not of_a.orders
    assert [o.order_id for o in of_b.orders] == ["ord-b"] and not of_b.leads


async def test_a_forgotten_customer_is_not_found_and_leaves_no_rows(
    stack: Stack, nats_client: Client
) -> None:
    t = tenant()
    cid = await new_customer(stack, t, "o-gone")
    await lead(nats_client, t, cid, "lead-g", channel="ch-g", at_days=4)
    await publish(
        nats_client,
        "conversion",
        "followup.logged",
        t,
        cid,
        conv.FollowUpLogged(follow_up_id="fu-g", rep_id="rep-1", kind=conv.FOLLOW_UP_KIND_CHAT),
    )
    await paid(nats_client, t, cid, 10, order_id="ord-g")

    async def in_view() -> bool:
        got = await view(stack, t, cid)
        return bool(got.leads and got.orders and got.follow_ups)

    await eventually(in_view)
    assert await rows_naming(stack, t, cid)
    await stack.ids.ForgetCustomer(
        ipb.ForgetCustomerRequest(tenant_id=t, customer_id=cid, actor="test", reason="asked")
    )
    err = await rpc_error(view(stack, t, cid))
    assert err.code() == grpc.StatusCode.NOT_FOUND

    async def erased() -> bool:
        return not await rows_naming(stack, t, cid)

    await eventually(erased)


async def test_bad_and_unknown_ids(stack: Stack) -> None:
    t = tenant()
    for bad in ("", "x" * 27):
        err = await rpc_error(view(stack, t, bad))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = await rpc_error(view(stack, t, str(ULID())))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    cid = await new_customer(stack, t, "o-limit")
    err = await rpc_error(
        stack.stub.GetCustomer360(
            pb.GetCustomer360Request(tenant_id=t, customer_id=cid, timeline_limit=501)
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    # known to identity, nothing seen by retention yet: identities, and nothing else
    got = await view(stack, t, cid)
    assert got.customer_id == cid and not got.leads and not got.HasField("activity")


async def test_identity_down_is_unavailable(
    nats_server: NatsServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("c360-down")
    async with running_service(
        RETENTION,
        database_url=f"sqlite+aiosqlite:///{tmp}/ret.db",
        nats_url=nats_server.url,
        state_dir=tmp,
        identity_url="127.0.0.1:9",
        identity_timeout_s=2,
        sweep_interval_s=0,
        dispatch_interval_s=0,
    ) as retention:
        stub = retention_pb2_grpc.RetentionServiceStub(retention.channel)
        err = await rpc_error(
            stub.GetCustomer360(pb.GetCustomer360Request(tenant_id=tenant(), customer_id="c1"))
        )
        assert err.code() == grpc.StatusCode.UNAVAILABLE


async def test_late_events_of_a_forgotten_customer_bring_no_rows_back(
    stack: Stack, nats_client: Client
) -> None:
    """Events of a forgotten customer that arrive after the erasure (late, or replayed) add
    nothing to the 360; another customer's events naming them as referrer keep the referral but
    not who made it."""
    nc, t = nats_client, tenant()
    cid = await new_customer(stack, t, "o-late-gone")
    other = await new_customer(stack, t, "o-late-other")
    await lead(nc, t, cid, "lead-before", channel="ch-g", at_days=6)

    async def in_view() -> bool:
        return bool((await view(stack, t, cid)).leads)

    await eventually(in_view)
    await stack.ids.ForgetCustomer(
        ipb.ForgetCustomerRequest(tenant_id=t, customer_id=cid, actor="test", reason="asked")
    )

    async def erased() -> bool:
        return not await rows_naming(stack, t, cid)

    await eventually(erased)

    # Late events of theirs on every stream the 360 reads, then one of `other` on each (the
    # marker that each stream's consumer got past them).
    touch = acq.TouchRecorded(touch_id=str(ULID()), kind=acq.TOUCH_KIND_SCAN, channel_id="ch-g")
    await publish(nc, "acquisition", "touch.recorded", t, cid, touch, at=days_ago(5))
    await lead(nc, t, cid, "lead-late", channel="ch-g", at_days=5)
    await lead(nc, t, other, "lead-o", channel="ch-o", referrer=cid, code="CODE-G", at_days=4)
    followup = conv.FollowUpLogged(follow_up_id="fu-late", rep_id="rep-1")
    await publish(nc, "conversion", "followup.logged", t, cid, followup, at=days_ago(4))
    await paid(nc, t, cid, 10, order_id="ord-late", at=days_ago(4))
    await paid(nc, t, other, 30, order_id="ord-o", at=days_ago(3))
    converted = ref.ReferralConverted(
        referral_id="rf-late", referrer_customer_id=cid, order_id="ord-o"
    )
    await publish(nc, "referral", "referral.converted", t, other, converted, at=days_ago(3))
    grant = ref.RewardGranted(
        reward_id="rw-late", referral_id="rf-late", kind=ref.REWARD_KIND_POINTS, points=5, level=1
    )
    await publish(nc, "referral", "reward.granted", t, cid, grant, at=days_ago(2))
    other_grant = ref.RewardGranted(
        reward_id="rw-o", kind=ref.REWARD_KIND_POINTS, points=1, level=1
    )
    await publish(nc, "referral", "reward.granted", t, other, other_grant, at=days_ago(2))

    async def others_in() -> bool:
        got = await view(stack, t, other)
        return bool(
            got.leads and got.orders and got.referral.rewards and got.referral.referral_converted
        )

    await eventually(others_in)
    assert await rows_naming(stack, t, cid) == []
    # Nor do they bring back the activity model's rows: no activity row, order, tag, stage
    # change or points of the forgotten customer.
    async with stack.retention.runtime.sessions() as session:
        for table in ACTIVITY_TABLES:
            left = await session.scalar(
                text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t AND customer_id = :c"),
                {"t": t, "c": cid},
            )
            assert left == 0, f"{table} holds rows of the forgotten customer"
    got = await view(stack, t, other)
    # Referred, with the code, but by nobody known any more.
    assert got.referral.referred_by_customer_id == ""
    assert got.referral.referred_by_code == "CODE-G"
    assert [x.referrer_customer_id for x in got.leads] == [""]
