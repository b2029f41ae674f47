"""Channels without a WeChat gateway configured: they work as before, say they have no code,
and deleting one retires it (expired from then on, still readable). With the gateway down:
UNAVAILABLE and nothing created; pages still serve their form."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from acquisition_helpers import WECHAT_UA, Env, event_xml, safe_post
from closedloop.acquisition.v1 import acquisition_pb2 as pb
from closedloop_acquisition.catalog.codes import NO_GATEWAY
from closedloop_acquisition.main import DEFINITION
from loopkit_dev.natsserver import NatsServer, free_port
from loopkit_dev.testing import eventually, running_service


async def test_without_a_gateway_a_qr_channel_works_and_says_it_has_no_code(env: Env) -> None:
    campaign = await env.campaign()
    qr = await env.qr_channel(campaign.campaign_id, "nocode-1")
    assert qr.code.ticket == "" and qr.code.image_url == ""
    assert qr.code.missing_reason == NO_GATEWAY
    way = await env.channel(
        campaign.campaign_id,
        kind=pb.CHANNEL_KIND_WECOM_CONTACT_WAY,
        state="nocode-way",
        user_ids=["rep-1"],
    )
    assert way.code.config_id == "" and way.code.missing_reason == NO_GATEWAY
    assert list(way.user_ids) == ["rep-1"]
    link = await env.channel(campaign.campaign_id, kind=pb.CHANNEL_KIND_LINK)
    assert link.code == pb.ChannelCode()  # a link has no code to miss
    fetched = await env.stub.GetChannel(
        pb.GetChannelRequest(tenant_id=env.tenant, channel_id=qr.channel_id)
    )
    assert fetched.channel.code.missing_reason == NO_GATEWAY


async def test_a_deleted_channel_stays_readable_and_its_scans_no_longer_count(env: Env) -> None:
    campaign = await env.campaign()
    qr = await env.qr_channel(campaign.campaign_id, "retire-1", welcome_message="Hi!")
    deleted = (
        await env.stub.DeleteChannel(
            pb.DeleteChannelRequest(tenant_id=env.tenant, channel_id=qr.channel_id)
        )
    ).channel
    assert deleted.HasField("deleted_at")
    again = (
        await env.stub.DeleteChannel(
            pb.DeleteChannelRequest(tenant_id=env.tenant, channel_id=qr.channel_id)
        )
    ).channel
    assert again.deleted_at == deleted.deleted_at  # deleting twice changes nothing
    # WeChat stamps events in whole seconds: this one comes a second after the deletion.
    later = int(time.time()) + 1
    xml = event_xml("o-late", "subscribe", key="qrscene_retire-1", create_time=later)
    query, body = safe_post(xml, env.app_id)
    async with env.http() as http:
        answer = await http.post(env.callback(), params=query, content=body)
    assert answer.status_code == 200 and answer.text == "success"  # no welcome any more

    async def counted() -> bool:
        return (await env.stats(qr.channel_id)).expired_touches == 2  # scan + subscribe

    await eventually(counted)
    stats = await env.stats(qr.channel_id)
    assert (stats.scans, stats.subscribes) == (0, 0)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": pb.CHANNEL_KIND_WECOM_CONTACT_WAY, "state": "s" * 31}, "state"),
        ({"kind": pb.CHANNEL_KIND_LINK, "corp_id": "ww1"}, "corp_id"),
        (
            {"kind": pb.CHANNEL_KIND_WECOM_CONTACT_WAY, "state": "ok", "user_ids": [""]},
            "user_ids[0]",
        ),
    ],
)
async def test_bad_contact_me_channels_are_refused(
    env: Env, fields: dict[str, object], field: str
) -> None:
    campaign = await env.campaign()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.channel(campaign.campaign_id, **fields)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(caught.value.trailing_metadata() or ())["closedloop-field"] == field


async def test_deleting_an_unknown_channel_is_not_found(env: Env) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.stub.DeleteChannel(
            pb.DeleteChannelRequest(tenant_id=env.tenant, channel_id="01NOCHANNEL000000000000000")
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_with_the_gateway_down_channels_are_unavailable_and_pages_still_serve(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"  # a gateway that is not running
    async with running_service(
        DEFINITION,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/acq.db",
        nats_url=nats_server.url,
        state_dir=tmp_path,
        identity_url=nowhere,
        gateway_url=nowhere,
        gateway_timeout_s=1.0,
    ) as acquisition:
        env = Env(None, acquisition, tenant="t-no-gateway", app_id="wx-x", plain_app_id="")
        campaign = await env.campaign()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await env.qr_channel(campaign.campaign_id, "down-1")
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        listed = await env.stub.ListChannels(
            pb.ListChannelsRequest(tenant_id=env.tenant, campaign_id=campaign.campaign_id)
        )
        assert list(listed.channels) == []
        # The page cannot send WeChat visitors through sign-in: it serves the form itself.
        page = await env.page(campaign.campaign_id)
        async with env.http() as http:
            answer = await http.get(f"/p/{page.page_id}", headers={"user-agent": WECHAT_UA})
        assert answer.status_code == 200 and "lead-form" in answer.text
