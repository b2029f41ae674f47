"""Fission campaigns (a QR code per participant, a goal of new subscribers) and funnel stats."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import grpc
import pytest
from nats.aio.client import Client
from sqlalchemy import select

from acquisition_helpers import Env, event_xml, form, openid, safe_post
from closedloop.acquisition.v1 import acquisition_pb2 as pb
from closedloop.events.v1 import acquisition_events_pb2 as ev
from closedloop.identity.v1 import identity_pb2
from closedloop_acquisition.models import ChannelRow, FissionParticipantRow
from loopkit.events import unpack
from loopkit_dev.testing import eventually, read_events


async def test_a_participant_who_brings_the_goal_unlocks_the_reward_once(
    env: Env, nats_client: Client
) -> None:
    campaign = (
        await env.stub.CreateCampaign(
            pb.CreateCampaignRequest(
                tenant_id=env.tenant, name="Bring 2 friends", fission_goal=2, fission_reward="mug"
            )
        )
    ).campaign
    joined = await env.stub.JoinFission(
        pb.JoinFissionRequest(
            tenant_id=env.tenant,
            campaign_id=campaign.campaign_id,
            identities=[openid("o-host", env.app_id)],
            app_id=env.app_id,
        )
    )
    again = await env.stub.JoinFission(
        pb.JoinFissionRequest(
            tenant_id=env.tenant,
            campaign_id=campaign.campaign_id,
            identities=[openid("o-host", env.app_id)],
            app_id=env.app_id,
        )
    )
    host = joined.participant
    assert joined.created and not again.created and again.participant.scene == host.scene
    page = await env.page(campaign.campaign_id)

    async with env.http() as http:
        # Two newcomers and the host (not new) subscribe through the host's poster; one
        # newcomer's event is delivered twice, and a third newcomer comes after the goal.
        created = int(time.time())
        for who in ("o-friend-1", "o-friend-1", "o-host", "o-friend-2", "o-friend-3"):
            query, body = safe_post(
                event_xml(who, "subscribe", key=f"qrscene_{host.scene}", create_time=created),
                env.app_id,
            )
            created += who != "o-friend-1"
            answer = await http.post(env.callback(), params=query, content=body)
            assert answer.status_code == 200

    async def progress() -> pb.FissionParticipant:
        answer = await env.stub.GetFissionProgress(
            pb.GetFissionProgressRequest(
                tenant_id=env.tenant, campaign_id=campaign.campaign_id, customer_id=host.customer_id
            )
        )
        return answer.participant

    async def all_counted() -> bool:
        return (await progress()).invited == 3

    await eventually(all_counted)
    final = await progress()
    assert final.goal_reached and final.goal == 2 and final.reward == "mug"

    async def reached() -> list[ev.FissionGoalReached]:
        found = await read_events(
            nats_client,
            "ACQUISITION",
            "closedloop.acquisition.fission.goal_reached",
            tenant_id=env.tenant,
        )
        return [unpack(e, ev.FissionGoalReached) for e in found]

    await eventually(reached)
    (event,) = await reached()
    assert (event.participant_customer_id, event.invited, event.goal, event.reward) == (
        host.customer_id,
        2,
        2,
        "mug",
    )

    # The friend's lead is credited to the host.
    lead = await env.stub.CaptureLead(
        pb.CaptureLeadRequest(
            tenant_id=env.tenant,
            page_id=page.page_id,
            values=form(phone_number="13200132000"),
            identities=[openid("o-friend-2", env.app_id)],
        )
    )
    assert lead.lead.attribution.referrer_customer_id == host.customer_id
    assert lead.lead.channel_id == host.channel_id


async def test_fission_needs_a_fission_campaign(env: Env) -> None:
    campaign = await env.campaign()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await env.stub.JoinFission(
            pb.JoinFissionRequest(
                tenant_id=env.tenant,
                campaign_id=campaign.campaign_id,
                identities=[openid("o-x", env.app_id)],
                app_id=env.app_id,
            )
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_campaign_stats_by_day_with_rates_and_cost(env: Env) -> None:
    campaign = await env.campaign()
    a = await env.channel(
        campaign.campaign_id,
        kind=pb.CHANNEL_KIND_AD,
        name="ad",
        cost={"currency": "CNY", "amount_minor": 30_000},
    )
    b = await env.channel(
        campaign.campaign_id,
        kind=pb.CHANNEL_KIND_OFFLINE,
        name="poster",
        cost={"currency": "CNY", "amount_minor": 10_000},
    )
    page = await env.page(campaign.campaign_id)
    for channel, kind, who in (
        (a, ev.TOUCH_KIND_EXPOSURE, "o-s1"),
        (a, ev.TOUCH_KIND_CLICK, "o-s1"),
        (b, ev.TOUCH_KIND_SCAN, "o-s2"),
        (b, ev.TOUCH_KIND_SUBSCRIBE, "o-s2"),
    ):
        await env.stub.RecordTouch(
            pb.RecordTouchRequest(
                tenant_id=env.tenant,
                channel_id=channel.channel_id,
                kind=kind,
                identities=[openid(who, env.app_id)],
            )
        )
    for n, who in enumerate(("o-s1", "o-s2")):
        await env.stub.CaptureLead(
            pb.CaptureLeadRequest(
                tenant_id=env.tenant,
                page_id=page.page_id,
                values=form(phone_number=f"1310013100{n}"),
                identities=[openid(who, env.app_id)],
            )
        )
    answer = await env.stub.GetChannelStats(
        pb.GetChannelStatsRequest(
            tenant_id=env.tenant, campaign_id=campaign.campaign_id, by_day=True
        )
    )
    stats = answer.stats
    assert (stats.exposures, stats.clicks, stats.scans, stats.subscribes) == (1, 1, 1, 1)
    assert (stats.leads, stats.unique_customers) == (2, 2)
    assert stats.cost.amount_minor == 40_000 and stats.cost_per_lead.amount_minor == 20_000
    assert stats.scan_to_subscribe_rate == 1.0 and stats.subscribe_to_lead_rate == 2.0
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert [(d.day, d.scans, d.leads) for d in answer.days] == [(today, 1, 2)]


async def test_a_forgotten_participant_takes_part_no_more(env: Env, nats_client: Client) -> None:
    """Forget erases the person's participation: no progress to read, and newcomers through
    their poster (still counted as the channel's subscribes) credit nobody and reach no goal."""
    campaign = (
        await env.stub.CreateCampaign(
            pb.CreateCampaignRequest(
                tenant_id=env.tenant, name="Bring 2", fission_goal=2, fission_reward="mug"
            )
        )
    ).campaign
    host = (
        await env.stub.JoinFission(
            pb.JoinFissionRequest(
                tenant_id=env.tenant,
                campaign_id=campaign.campaign_id,
                identities=[openid("o-forgotten-host", env.app_id)],
                app_id=env.app_id,
            )
        )
    ).participant
    progress = pb.GetFissionProgressRequest(
        tenant_id=env.tenant, campaign_id=campaign.campaign_id, customer_id=host.customer_id
    )

    async def subscribe(who: str) -> None:
        query, body = safe_post(
            event_xml(who, "subscribe", key=f"qrscene_{host.scene}", create_time=int(time.time())),
            env.app_id,
        )
        async with env.http() as http:
            assert (await http.post(env.callback(), params=query, content=body)).status_code == 200

    async def subscribes(n: int) -> bool:
        return (await env.stats(host.channel_id)).subscribes == n

    await subscribe("o-forgotten-friend-1")
    await eventually(lambda: subscribes(1))
    assert (await env.stub.GetFissionProgress(progress)).participant.invited == 1

    await env.identity_stub.ForgetCustomer(
        identity_pb2.ForgetCustomerRequest(
            tenant_id=env.tenant, customer_id=host.customer_id, actor="test", reason="PIPL request"
        )
    )

    async def gone() -> bool:
        try:
            await env.stub.GetFissionProgress(progress)
        except grpc.aio.AioRpcError as exc:
            return exc.code() == grpc.StatusCode.NOT_FOUND
        return False

    await eventually(gone)
    # The second newcomer would have reached the goal.
    await subscribe("o-forgotten-friend-2")
    await eventually(lambda: subscribes(2))
    reached = await read_events(
        nats_client,
        "ACQUISITION",
        "closedloop.acquisition.fission.goal_reached",
        tenant_id=env.tenant,
    )
    assert [unpack(e, ev.FissionGoalReached).participant_customer_id for e in reached] == []
    # Nothing acquisition keeps of the poster names them any more: not its channel (name, scene,
    # parameters, tags...), nor a participation.
    async with env.acquisition.runtime.sessions() as session:
        for table in (ChannelRow.__table__, FissionParticipantRow.__table__):
            rows = (
                await session.execute(select(table).where(table.c.tenant_id == env.tenant))
            ).all()
            left = [r for r in rows if host.customer_id in repr(tuple(r))]
            assert left == [], f"{table.name} still names the forgotten customer"
