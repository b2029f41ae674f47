"""Channel schedules: a scan or a form outside the schedule earns the channel nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
import pytest
from wechatpy import parse_message

from acquisition_helpers import Env, event_xml, form, open_safe_reply, openid, safe_post
from closedloop.acquisition.v1 import acquisition_pb2 as pb
from loopkit_dev.testing import eventually

ZONE = "Asia/Shanghai"


def _hhmm(offset: timedelta) -> str:
    return (datetime.now(UTC) + offset).astimezone(ZoneInfo(ZONE)).strftime("%H:%M")


def shut_now() -> pb.Schedule:
    """Every day, a window two hours from now: shut for the length of any test run."""
    return pb.Schedule(
        weekdays=[1, 2, 3, 4, 5, 6, 7],
        start=_hhmm(timedelta(hours=2)),
        end=_hhmm(timedelta(hours=3)),
        time_zone=ZONE,
    )


def open_now() -> pb.Schedule:
    """Every day, from an hour ago to two hours ahead (wrapping past midnight is allowed)."""
    return pb.Schedule(
        weekdays=[1, 2, 3, 4, 5, 6, 7],
        start=_hhmm(-timedelta(hours=1)),
        end=_hhmm(timedelta(hours=2)),
        time_zone=ZONE,
    )


async def _subscribe(env: Env, who: str, scene: str) -> str:
    """The passive reply the account gives to a subscribe through this scene's code."""
    query, body = safe_post(event_xml(who, "subscribe", key=f"qrscene_{scene}"), env.app_id)
    async with env.http() as http:
        answer = await http.post(env.callback(), params=query, content=body)
    assert answer.status_code == 200
    if answer.text == "success":
        return ""
    return str(parse_message(open_safe_reply(answer.text, env.app_id)).content)


async def _lead_of(env: Env, who: str, phone_number: str, page_id: str) -> pb.Lead:
    answer = await env.stub.CaptureLead(
        pb.CaptureLeadRequest(
            tenant_id=env.tenant,
            page_id=page_id,
            values=form(phone_number=phone_number),
            identities=[openid(who, env.app_id)],
        )
    )
    return answer.lead


async def test_a_scan_outside_the_schedule_gets_the_expired_reply_and_earns_no_lead(
    env: Env,
) -> None:
    campaign = await env.campaign()
    shut = await env.qr_channel(
        campaign.campaign_id,
        "sched-shut",
        welcome_message="Welcome!",
        expired_reply="This event has ended.",
        schedule=shut_now(),
    )
    page = await env.page(campaign.campaign_id)

    assert await _subscribe(env, "o-late", "sched-shut") == "This event has ended."

    async def recorded() -> bool:
        stats = await env.stats(shut.channel_id)
        return (stats.scans, stats.subscribes, stats.expired_touches) == (0, 0, 2)

    await eventually(recorded)
    # The scanner fills in the form later: the lead credits no channel, the closed one neither.
    lead = await _lead_of(env, "o-late", "13900139101", page.page_id)
    assert lead.channel_id == ""
    assert lead.attribution.last_channel_id == ""
    assert (await env.stats(shut.channel_id)).leads == 0


async def test_a_scan_inside_the_schedule_gets_the_welcome_and_credits_the_lead(
    env: Env,
) -> None:
    campaign = await env.campaign()
    shop = await env.qr_channel(
        campaign.campaign_id,
        "sched-open",
        welcome_message="Welcome!",
        expired_reply="This event has ended.",
        schedule=open_now(),
    )
    page = await env.page(campaign.campaign_id)

    assert await _subscribe(env, "o-early", "sched-open") == "Welcome!"

    async def recorded() -> bool:
        stats = await env.stats(shop.channel_id)
        return (stats.scans, stats.subscribes, stats.expired_touches) == (1, 1, 0)

    await eventually(recorded)
    lead = await _lead_of(env, "o-early", "13900139102", page.page_id)
    assert lead.channel_id == shop.channel_id
    assert lead.attribution.last_channel_id == shop.channel_id
    assert (await env.stats(shop.channel_id)).leads == 1


async def test_a_form_of_a_channel_outside_its_schedule_is_refused_and_stores_nothing(
    env: Env,
) -> None:
    campaign = await env.campaign()
    shut = await env.channel(campaign.campaign_id, kind=pb.CHANNEL_KIND_AD, schedule=shut_now())
    page = await env.page(campaign.campaign_id, shut.channel_id)
    other = await env.page(campaign.campaign_id)
    async with env.http() as http:
        own = await http.post(f"/v1/forms/{page.page_id}/submissions", json={"values": form()})
        named = await http.post(
            f"/v1/forms/{other.page_id}/submissions",
            json={"values": form(), "channel_id": shut.channel_id},
        )
    for answer in (own, named):
        assert answer.status_code == 409, answer.text
        assert "this campaign has ended" in answer.text
    assert (await env.stats(shut.channel_id)).leads == 0


async def test_a_schedule_with_an_unknown_time_zone_is_refused(env: Env) -> None:
    campaign = await env.campaign()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await env.channel(
            campaign.campaign_id,
            kind=pb.CHANNEL_KIND_AD,
            schedule=pb.Schedule(start="09:00", end="18:00", time_zone="Mars/Olympus"),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "schedule.time_zone" in str(refused.value.details())
