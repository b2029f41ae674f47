"""Acquisition with the real gateway and the WeChat emulator: channels get real codes, the
page signs visitors in through WeChat web authorization, and a gateway outage leaves nothing
half-made."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import pytest
import pytest_asyncio
from nats.aio.client import Client
from playwright.async_api import Browser, BrowserContext, expect

from acquisition_helpers import SESSION_SECRET, WECHAT_UA, WechatSlot, at, openid, phone
from closedloop.acquisition.v1 import acquisition_pb2 as pb
from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1 import acquisition_events_pb2 as ev
from closedloop.gateway.v1 import gateway_pb2 as gw
from closedloop.gateway.v1 import gateway_pb2_grpc
from closedloop.identity.v1 import identity_pb2
from closedloop_acquisition.pages.signin import Signer, SignIn
from closedloop_acquisition.wechat import WebIdentity
from loopkit.events import unpack
from loopkit_dev.testing import eventually, read_events


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --- channels get real codes --------------------------------------------------------------


async def test_qr_channels_get_a_ticket_and_image_from_wechat(wx: WechatSlot) -> None:
    env = wx.env
    campaign = await env.campaign()
    scene = _unique("poster")
    temporary = await env.qr_channel(campaign.campaign_id, scene, expires_in_s=3600)
    assert temporary.code.ticket and temporary.code.url and temporary.code.image_url
    assert temporary.code.missing_reason == ""
    permanent = await env.channel(
        campaign.campaign_id, kind=pb.CHANNEL_KIND_QR_PERMANENT, scene=scene + "-p"
    )
    assert permanent.code.ticket and permanent.app_id == wx.app_id  # the tenant's default
    made = {
        call["body"]["action_info"]["scene"]["scene_str"]: call["body"]
        for call in wx.wechat.calls("qrcode/create", wx.app_id)
    }
    assert made[scene]["action_name"] == "QR_STR_SCENE"
    assert 3500 < made[scene]["expire_seconds"] <= 3600
    assert made[scene + "-p"]["action_name"] == "QR_LIMIT_STR_SCENE"
    # What GetChannel shows is what was stored, and the image is a real image.
    stored = (
        await env.stub.GetChannel(
            pb.GetChannelRequest(tenant_id=env.tenant, channel_id=temporary.channel_id)
        )
    ).channel
    assert stored.code == temporary.code
    async with httpx.AsyncClient(trust_env=False) as http:
        image = await http.get(stored.code.image_url)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"


async def test_a_contact_me_channel_gets_a_code_and_deleting_it_removes_it(
    wx: WechatSlot,
) -> None:
    env = wx.env
    campaign = await env.campaign()
    state = _unique("expo")[:30]
    way = await env.channel(
        campaign.campaign_id,
        kind=pb.CHANNEL_KIND_WECOM_CONTACT_WAY,
        state=state,
        user_ids=["rep-li", "rep-wang"],
        skip_verify=True,
    )
    assert way.code.config_id and way.code.image_url and way.corp_id == wx.corp_id
    (created,) = [
        call["body"]
        for call in wx.wechat.calls("externalcontact/add_contact_way", wx.corp_id)
        if call["body"].get("state") == state
    ]
    assert created["user"] == ["rep-li", "rep-wang"] and created["skip_verify"] is True

    deleted = (
        await env.stub.DeleteChannel(
            pb.DeleteChannelRequest(tenant_id=env.tenant, channel_id=way.channel_id)
        )
    ).channel
    assert deleted.HasField("deleted_at")

    def removals() -> list[object]:
        return [
            call
            for call in wx.wechat.calls("externalcontact/del_contact_way", wx.corp_id)
            if call["body"].get("config_id") == way.code.config_id
        ]

    assert len(removals()) == 1
    await env.stub.DeleteChannel(
        pb.DeleteChannelRequest(tenant_id=env.tenant, channel_id=way.channel_id)
    )
    assert len(removals()) == 1  # already gone: WeCom is not asked again


async def test_an_expired_contact_me_channel_loses_its_code_at_wecom_once(
    wx: WechatSlot,
) -> None:
    """A contact-me channel whose expiry passes has its code removed at WeCom by the release
    worker, once (a WeCom outage on the first attempt is retried), and GetChannel says so; a
    later DeleteChannel does not ask WeCom again. So does one whose campaign ends. A live
    channel keeps its code."""
    env = wx.env
    campaign = await env.campaign()
    ends = datetime.now(UTC) + timedelta(seconds=2)
    expiring = await env.channel(
        campaign.campaign_id,
        kind=pb.CHANNEL_KIND_WECOM_CONTACT_WAY,
        state=_unique("fair")[:30],
        user_ids=["rep-li"],
        expires_at=at(ends),
    )
    lasting = await env.channel(
        campaign.campaign_id,
        kind=pb.CHANNEL_KIND_WECOM_CONTACT_WAY,
        state=_unique("shop")[:30],
        user_ids=["rep-li"],
    )
    wx.wechat.fail("externalcontact/del_contact_way", -1, count=1, corp_id=wx.corp_id)

    def removals(config_id: str) -> list[object]:
        return [
            call
            for call in wx.wechat.calls("externalcontact/del_contact_way", wx.corp_id)
            if call["body"].get("config_id") == config_id
        ]

    async def released() -> bool:
        got = await env.stub.GetChannel(
            pb.GetChannelRequest(tenant_id=env.tenant, channel_id=expiring.channel_id)
        )
        return "removed at WeCom" in got.channel.code.missing_reason

    await eventually(released)
    assert datetime.now(UTC) >= ends
    # The busy answer, then one removal; nothing for the channel that has not ended.
    assert [call["errcode"] for call in removals(expiring.code.config_id)] == [-1, 0]
    assert removals(lasting.code.config_id) == []
    await env.stub.DeleteChannel(
        pb.DeleteChannelRequest(tenant_id=env.tenant, channel_id=expiring.channel_id)
    )
    assert len(removals(expiring.code.config_id)) == 2
    # WeCom no longer knows the code.
    gateway = gateway_pb2_grpc.GatewayServiceStub(wx.gateway.channel)  # type: ignore[no-untyped-call]
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await gateway.DeleteContactWay(
            gw.DeleteContactWayRequest(
                tenant_id=env.tenant, corp_id=wx.corp_id, config_id=expiring.code.config_id
            )
        )
    assert gone.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "41044" in (gone.value.details() or "")

    # A channel whose campaign ends has ended too.
    short = (
        await env.stub.CreateCampaign(
            pb.CreateCampaignRequest(
                tenant_id=env.tenant,
                name="Weekend fair",
                ends_at=at(datetime.now(UTC) + timedelta(seconds=2)),
            )
        )
    ).campaign
    fair = await env.channel(
        short.campaign_id,
        kind=pb.CHANNEL_KIND_WECOM_CONTACT_WAY,
        state=_unique("wknd")[:30],
        user_ids=["rep-li"],
    )

    async def fair_released() -> bool:
        got = await env.stub.GetChannel(
            pb.GetChannelRequest(tenant_id=env.tenant, channel_id=fair.channel_id)
        )
        return "removed at WeCom" in got.channel.code.missing_reason

    await eventually(fair_released)
    assert [call["errcode"] for call in removals(fair.code.config_id)] == [0]
    assert removals(lasting.code.config_id) == []


async def test_a_wechat_outage_answers_unavailable_and_creates_nothing(wx: WechatSlot) -> None:
    env = wx.env
    campaign = await env.campaign()
    scene = _unique("busy")
    # WeChat answers "system busy" to every attempt of the call (the client retries it 4 times).
    wx.wechat.fail("qrcode/create", -1, count=4, app_id=wx.app_id)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.qr_channel(campaign.campaign_id, scene)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    wx.wechat.fail("externalcontact/add_contact_way", -1, count=1, corp_id=wx.corp_id)
    with pytest.raises(grpc.aio.AioRpcError) as way_caught:
        await env.channel(
            campaign.campaign_id,
            kind=pb.CHANNEL_KIND_WECOM_CONTACT_WAY,
            state="busy-way",
            user_ids=["rep-li"],
        )
    assert way_caught.value.code() == grpc.StatusCode.UNAVAILABLE
    listed = await env.stub.ListChannels(
        pb.ListChannelsRequest(tenant_id=env.tenant, campaign_id=campaign.campaign_id)
    )
    assert list(listed.channels) == []
    # WeChat is back: the same scene and state are free, and the channels get their codes.
    qr = await env.qr_channel(campaign.campaign_id, scene)
    way = await env.channel(
        campaign.campaign_id,
        kind=pb.CHANNEL_KIND_WECOM_CONTACT_WAY,
        state="busy-way",
        user_ids=["rep-li"],
    )
    assert qr.code.ticket and way.code.config_id


async def test_wechat_refusals_are_clear_errors(wx: WechatSlot) -> None:
    env = wx.env
    campaign = await env.campaign()
    with pytest.raises(grpc.aio.AioRpcError) as too_long:
        await env.channel(
            campaign.campaign_id,
            kind=pb.CHANNEL_KIND_QR_TEMPORARY,
            scene=_unique("long"),
            expires_at=at(datetime.now(UTC) + timedelta(days=31)),
        )
    assert too_long.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await env.channel(
            campaign.campaign_id,
            kind=pb.CHANNEL_KIND_QR_PERMANENT,
            scene=_unique("foreign"),
            app_id="wxedge9999",  # not this tenant's account
        )
    assert foreign.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)
    with pytest.raises(grpc.aio.AioRpcError) as no_reps:
        await env.channel(
            campaign.campaign_id, kind=pb.CHANNEL_KIND_WECOM_CONTACT_WAY, state="no-reps"
        )
    assert no_reps.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    listed = await env.stub.ListChannels(
        pb.ListChannelsRequest(tenant_id=env.tenant, campaign_id=campaign.campaign_id)
    )
    assert list(listed.channels) == []


async def test_a_fission_participants_poster_gets_its_own_qr_code_once(wx: WechatSlot) -> None:
    env = wx.env
    campaign = (
        await env.stub.CreateCampaign(
            pb.CreateCampaignRequest(
                tenant_id=env.tenant, name="Bring two", fission_goal=2, fission_reward="A mug"
            )
        )
    ).campaign
    join = pb.JoinFissionRequest(
        tenant_id=env.tenant,
        campaign_id=campaign.campaign_id,
        identities=[openid(_unique("o-host"), wx.app_id)],
        app_id=wx.app_id,
    )
    first = await env.stub.JoinFission(join)
    again = await env.stub.JoinFission(join)
    assert first.created and not again.created
    assert again.participant.channel_id == first.participant.channel_id
    poster = (
        await env.stub.GetChannel(
            pb.GetChannelRequest(tenant_id=env.tenant, channel_id=first.participant.channel_id)
        )
    ).channel
    assert poster.code.ticket and poster.code.image_url
    made = [
        call["body"]
        for call in wx.wechat.calls("qrcode/create", wx.app_id)
        if call["body"]["action_info"]["scene"]["scene_str"] == first.participant.scene
    ]
    assert [body["action_name"] for body in made] == ["QR_LIMIT_STR_SCENE"]  # once, permanent


# --- the page signs visitors in through WeChat ------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def in_wechat(browser: Browser) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, user_agent=WECHAT_UA
    )
    yield context
    await context.close()


async def _page(wx: WechatSlot, sign_in: int = pb.PAGE_SIGN_IN_BASE) -> pb.LandingPage:
    env = wx.env
    campaign = await env.campaign()
    answer = await env.stub.CreateLandingPage(
        pb.CreateLandingPageRequest(
            tenant_id=env.tenant,
            campaign_id=campaign.campaign_id,
            title="Trial",
            sign_in=sign_in,  # type: ignore[arg-type]
            fields=[
                pb.FormField(name="name", type=pb.FIELD_TYPE_NAME, label="Name"),
                pb.FormField(name="phone", type=pb.FIELD_TYPE_PHONE, label="Phone", required=True),
            ],
        )
    )
    return answer.page


async def _lead_customer(wx: WechatSlot, nc: Client, page_id: str) -> str:
    async def captured() -> list[ev.LeadCaptured]:
        found = await read_events(
            nc, "ACQUISITION", "closedloop.acquisition.lead.captured", tenant_id=wx.env.tenant
        )
        return [
            e for e in (unpack(f, ev.LeadCaptured) for f in found) if e.landing_page_id == page_id
        ]

    await eventually(captured)
    (event,) = await captured()
    lead = await wx.env.stub.GetLead(
        pb.GetLeadRequest(tenant_id=wx.env.tenant, lead_id=event.lead_id)
    )
    return lead.lead.customer_id


async def test_a_newcomer_in_wechat_signs_in_and_their_lead_carries_the_verified_openid(
    wx: WechatSlot, in_wechat: BrowserContext, nats_client: Client
) -> None:
    env = wx.env
    unionid = _unique("u")
    wx.wechat.user(app_id=wx.app_id, openid=f"o-emu-{wx.app_id}", unionid=unionid)
    page = await _page(wx, pb.PAGE_SIGN_IN_USERINFO)
    tab = await in_wechat.new_page()
    visited: list[str] = []
    tab.on("request", lambda r: visited.append(r.url) if r.is_navigation_request() else None)
    await tab.goto(f"{env.acquisition.http_url}/p/{page.page_id}?utm_source=poster")
    # Through WeChat's authorize page and back to the page, its link parameters kept.
    assert any(u.startswith(f"{wx.wechat.url}/connect/oauth2/authorize") for u in visited)
    assert "scope=snsapi_userinfo" in next(u for u in visited if "/authorize" in u)
    await expect(tab.get_by_role("heading", name="Trial")).to_be_visible()
    assert urlsplit(tab.url).path == f"/p/{page.page_id}"
    assert parse_qs(urlsplit(tab.url).query) == {"utm_source": ["poster"]}
    session = [k for k in await in_wechat.cookies() if k["name"] == "cl_wechat"]
    assert len(session) == 1 and session[0]["httpOnly"] and session[0]["sameSite"] == "Lax"

    await tab.get_by_label("Phone").fill("13200132000")
    await tab.get_by_role("button", name="Submit").click()
    await expect(tab.get_by_text("Thank you!")).to_be_visible()

    customer_id = await _lead_customer(wx, nats_client, page.page_id)
    found = await env.customer_of(openid(f"o-emu-{wx.app_id}", wx.app_id))
    assert found is not None and found.customer_id == customer_id
    verified = {(i.kind, i.value): i.verified for i in found.identities}
    assert verified[(c.IDENTITY_KIND_WECHAT_OPENID, f"o-emu-{wx.app_id}")] is True
    assert verified[(c.IDENTITY_KIND_WECHAT_UNIONID, unionid)] is True
    by_phone = await env.customer_of(phone("+8613200132000"))
    assert by_phone is not None and by_phone.customer_id == customer_id


async def test_outside_wechat_or_with_sign_in_off_the_form_is_served_directly(
    wx: WechatSlot, in_wechat: BrowserContext
) -> None:
    env = wx.env
    page = await _page(wx)
    async with env.http() as http:
        plain = await http.get(f"/p/{page.page_id}", headers={"user-agent": "Mozilla/5.0"})
        assert plain.status_code == 200 and "lead-form" in plain.text
        inside = await http.get(f"/p/{page.page_id}", headers={"user-agent": WECHAT_UA})
        assert inside.status_code == 302
        assert inside.headers["location"].startswith(f"{wx.wechat.url}/connect/oauth2/")
    off = await _page(wx, pb.PAGE_SIGN_IN_NONE)
    async with env.http() as http:
        answer = await http.get(f"/p/{off.page_id}", headers={"user-agent": WECHAT_UA})
    assert answer.status_code == 200 and "lead-form" in answer.text


async def test_a_sign_in_finished_in_another_browser_or_with_a_used_code_is_refused(
    wx: WechatSlot,
) -> None:
    env = wx.env
    page = await _page(wx)
    headers = {"user-agent": WECHAT_UA}
    async with (
        env.http() as victim,
        env.http() as attacker,
        httpx.AsyncClient(trust_env=False) as wechat,
    ):
        # The attacker starts a sign-in and gets WeChat's code for their own account...
        started = await attacker.get(f"/p/{page.page_id}", headers=headers)
        back = await wechat.get(started.headers["location"].split("#")[0])
        callback = urlsplit(back.headers["location"])
        path = f"{callback.path}?{callback.query}"
        # ...and makes the victim's browser finish it: no sign-in cookie there, refused.
        planted = await victim.get(path, headers=headers)
        assert planted.status_code == 400 and "Sign-in did not work" in planted.text
        assert "cl_wechat" not in planted.cookies
        # The attacker's own browser finishes it once; the same code again is refused.
        own = await attacker.get(path, headers=headers)
        assert own.status_code == 303 and "cl_wechat" in own.cookies
        victim.cookies.update(started.cookies)
        replay = await victim.get(path, headers=headers)
        assert replay.status_code == 400
        # A tampered state is refused as well.
        tampered = path.replace("state=", "state=x")
        assert (await attacker.get(tampered, headers=headers)).status_code == 400


async def test_only_a_session_cookie_signed_by_acquisition_counts(
    wx: WechatSlot, nats_client: Client
) -> None:
    env = wx.env
    who = WebIdentity(app_id=wx.app_id, openid=_unique("o"), unionid=_unique("u"))
    victim = await env.identity_stub.ResolveCustomer(
        identity_pb2.ResolveCustomerRequest(
            tenant_id=env.tenant,
            identities=[
                c.Identity(kind=c.IDENTITY_KIND_WECHAT_UNIONID, value=who.unionid, verified=True)
            ],
        )
    )
    now = time.time()
    forged = SignIn(Signer(b"someone-elses-secret-42"), session_ttl_s=600)
    genuine = SignIn(Signer(SESSION_SECRET.encode()), session_ttl_s=600)
    outcomes = []
    for signin, number in ((forged, "13100131000"), (genuine, "13100131001")):
        page = await _page(wx)
        cookie = signin.session(env.tenant, who, now)
        async with env.http() as http:
            http.cookies.set("cl_wechat", cookie)
            answer = await http.post(
                f"/v1/forms/{page.page_id}/submissions", json={"values": {"phone": number}}
            )
        assert answer.status_code == 201, answer.text
        outcomes.append(await _lead_customer(wx, nats_client, page.page_id))
    # A cookie acquisition did not sign says nothing; one it signed is WeChat's word.
    assert outcomes[0] != victim.customer.customer_id
    assert outcomes[1] == victim.customer.customer_id
