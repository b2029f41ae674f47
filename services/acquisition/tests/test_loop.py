"""The issue's "done when": QR channel + landing page, a signed subscribe, a form with a phone
after WeChat sign-in, one customer in identity, one attributed lead, lead.captured on JetStream,
and the stats."""

from __future__ import annotations

from acquisition_helpers import (
    Env,
    WechatSlot,
    event_xml,
    form,
    openid,
    phone,
    plain_post,
    safe_post,
    sign_in,
    signed_query,
)
from closedloop.acquisition.v1 import acquisition_pb2 as pb
from closedloop.events.v1 import acquisition_events_pb2 as ev
from loopkit.events import unpack
from loopkit_dev.testing import eventually, read_events


async def test_subscribe_then_form_gives_one_customer_and_one_attributed_lead(
    wx: WechatSlot, nats_client: object
) -> None:
    env = wx.env
    campaign = await env.campaign()
    channel = await env.qr_channel(
        campaign.campaign_id, "spring-1", welcome_message="Welcome! Here is your trial link."
    )
    page = await env.page(campaign.campaign_id)

    query, body = safe_post(
        event_xml("o-visitor-1", "subscribe", key="qrscene_spring-1"), env.app_id
    )
    async with env.http() as http:
        answer = await http.post(env.callback(), params=query, content=body)
        assert answer.status_code == 200

        async def touched() -> bool:
            return (await env.stats(channel.channel_id)).subscribes == 1

        await eventually(touched)
        # The page signs the visitor in through WeChat: the form knows them for sure.
        await sign_in(http, page.page_id, "o-visitor-1")
        submitted = await http.post(
            f"/v1/forms/{page.page_id}/submissions", json={"values": form()}
        )
        assert submitted.status_code == 201, submitted.text

    customer = await env.customer_of(openid("o-visitor-1", env.app_id))
    assert customer is not None
    kinds = {i.kind for i in customer.identities}
    assert kinds == {openid("x", env.app_id).kind, phone("x").kind}
    by_phone = await env.customer_of(phone("+8613800138000"))
    assert by_phone is not None and by_phone.customer_id == customer.customer_id

    lead = (
        await env.stub.GetLead(
            pb.GetLeadRequest(tenant_id=env.tenant, lead_id=submitted.json()["lead_id"])
        )
    ).lead
    assert lead.customer_id == customer.customer_id
    assert lead.channel_id == channel.channel_id
    assert lead.attribution.last_channel_id == channel.channel_id
    assert lead.attribution.channel_kind == "qr_temporary"
    assert lead.consent_granted
    assert lead.consent_wording == "I agree to be contacted about the trial."

    stats = await env.stats(channel.channel_id)
    assert (stats.scans, stats.subscribes, stats.leads) == (1, 1, 1)
    assert stats.unique_customers == 1

    async def captured() -> list[ev.LeadCaptured]:
        events = await read_events(
            nats_client,  # type: ignore[arg-type]
            "ACQUISITION",
            "closedloop.acquisition.lead.captured",
            tenant_id=env.tenant,
        )
        return [unpack(e, ev.LeadCaptured) for e in events]

    await eventually(captured)
    (event,) = await captured()
    assert event.lead_id == lead.lead_id
    assert event.channel_id == channel.channel_id
    assert event.attribution.last_channel_id == channel.channel_id


async def test_plaintext_callback_and_url_verification(env: Env) -> None:
    campaign = await env.campaign()
    channel = await env.qr_channel(campaign.campaign_id, "plain-1")
    async with env.http() as http:
        query = {**signed_query(), "echostr": "echo-123"}
        answer = await http.get(env.callback(safe=False), params=query)
        assert answer.status_code == 200 and answer.text == "echo-123"

        query, body = plain_post(event_xml("o-plain", "SCAN", key="plain-1"))
        answer = await http.post(env.callback(safe=False), params=query, content=body)
        assert answer.status_code == 200 and answer.text == "success"

    async def scanned() -> bool:
        return (await env.stats(channel.channel_id)).scans == 1

    await eventually(scanned)
    stats = await env.stats(channel.channel_id)
    assert stats.subscribes == 0


async def test_business_metrics_are_exported(env: Env) -> None:
    campaign = await env.campaign()
    page = await env.page(campaign.campaign_id)
    async with env.http() as http:
        submitted = await http.post(
            f"/v1/forms/{page.page_id}/submissions", json={"values": form("Han Meimei")}
        )
        assert submitted.status_code == 201
        scrape = (await http.get("/metrics")).text
    leads = [
        line
        for line in scrape.splitlines()
        if line.startswith("closedloop_leads_captured") and 'outcome="new"' in line
    ]
    assert leads and float(leads[0].rsplit(" ", 1)[1]) >= 1
    assert "closedloop_touches_recorded" in scrape
