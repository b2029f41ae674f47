"""Leads: one per customer per campaign, re-submissions, consent, attribution, bad input."""

from __future__ import annotations

import json

import grpc
import pytest
from nats.aio.client import Client

from acquisition_helpers import Env, form, openid, phone
from closedloop.acquisition.v1 import acquisition_pb2 as pb
from closedloop.events.v1 import acquisition_events_pb2 as ev
from loopkit.events import unpack
from loopkit_dev.testing import eventually, read_events


async def _lead_events(nc: Client, env: Env) -> list[str]:
    found = await read_events(
        nc, "ACQUISITION", "closedloop.acquisition.lead.>", tenant_id=env.tenant
    )
    return [e.type for e in found]


async def test_a_resubmission_updates_the_lead_and_never_captures_twice(
    env: Env, nats_client: Client
) -> None:
    campaign = await env.campaign()
    page = await env.page(campaign.campaign_id)
    async with env.http() as http:
        url = f"/v1/forms/{page.page_id}/submissions"
        first = await http.post(url, json={"values": form(note="first")})
        # Same person (the phone, written differently), same campaign.
        again = await http.post(
            url, json={"values": form(phone_number="+86 138 0013 8000", note="second")}
        )
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["lead_id"] == again.json()["lead_id"]
    assert again.json()["repeat"] is True
    lead = (
        await env.stub.GetLead(
            pb.GetLeadRequest(tenant_id=env.tenant, lead_id=first.json()["lead_id"])
        )
    ).lead
    assert lead.submissions == 2 and lead.values["note"] == "second"

    async def both() -> bool:
        return len(await _lead_events(nats_client, env)) == 2

    await eventually(both)
    assert sorted(await _lead_events(nats_client, env)) == ["lead.captured", "lead.resubmitted"]


async def test_capture_lead_over_grpc_with_an_openid_from_the_h5_page(env: Env) -> None:
    campaign = await env.campaign()
    channel = await env.channel(
        campaign.campaign_id,
        kind=pb.CHANNEL_KIND_LINK,
        url="https://example.com/trial",
        parameters={"utm_source": "newsletter"},
        owner_team="east",
        tags=["trial"],
        cost={"currency": "CNY", "amount_minor": 10_000},
    )
    page = await env.page(campaign.campaign_id, channel.channel_id)
    answer = await env.stub.CaptureLead(
        pb.CaptureLeadRequest(
            tenant_id=env.tenant,
            page_id=page.page_id,
            values=form(phone_number="13900139000"),
            identities=[openid("o-h5", env.app_id)],
            parameters={"utm_medium": "email"},
        )
    )
    assert not answer.repeat
    assert answer.lead.channel_id == channel.channel_id
    assert answer.lead.attribution.channel_kind == "link"
    assert answer.lead.attribution.parameters["utm_medium"] == "email"
    customer = await env.customer_of(phone("+8613900139000"))
    assert customer is not None and customer.customer_id == answer.lead.customer_id
    stats = await env.stats(channel.channel_id)
    assert stats.leads == 1 and stats.cost_per_lead.amount_minor == 10_000


async def test_bad_form_submissions_are_4xx_naming_the_field_and_store_nothing(env: Env) -> None:
    campaign = await env.campaign()
    channel = await env.channel(campaign.campaign_id, kind=pb.CHANNEL_KIND_AD)
    page = await env.page(campaign.campaign_id, channel.channel_id)
    url = f"/v1/forms/{page.page_id}/submissions"
    cases: list[tuple[dict[str, object] | bytes, int, str]] = [
        ({"values": {"name": "Li", "agree": "true"}}, 400, "values.phone"),
        ({"values": form(phone_number="12345")}, 400, "values.phone"),
        ({"values": form(color="red")}, 400, "values.color"),
        ({"values": form(agree="false")}, 400, "values.agree"),
        ({"values": form(note="x" * 21)}, 400, "values.note"),
        ({"values": form(), "surprise": 1}, 400, "surprise"),
        ({"values": ["not", "an", "object"]}, 400, "values"),
        ({"values": form(), "openid": "o-1"}, 400, "app_id"),
        ({"values": form(note="a\u0000b")}, 400, "values.note"),
        ({"values": form(note="\ud800")}, 400, "values.note"),
        ({"values": form(**{"名字": "x"})}, 400, "values"),
        ({"values": form(), "channel_id": "x\u0000"}, 400, "channel_id"),
        ({"values": form(), "channel_id": "01UNKNOWNCHANNEL"}, 404, "channel_id"),
        ({"values": form(), "ref": "\u0000"}, 400, "ref"),
        ({"values": form(), "parameters": {"utm_source": "\ud800"}}, 400, "parameters.utm_source"),
        ({"values": {"name": ["Li"], "phone": "13800138000", "agree": True}}, 400, "values.name"),
        (b"\xff\xfe{not utf-8}", 400, "body"),
        (b"{not json", 400, "body"),
        (b"x" * (1024 * 1024), 413, "body"),
    ]
    async with env.http() as http:
        for body, status, field in cases:
            if isinstance(body, bytes):
                answer = await http.post(
                    url, content=body, headers={"content-type": "application/json"}
                )
            else:  # escaped JSON, so lone surrogates reach the server as a browser may send them
                answer = await http.post(
                    url,
                    content=json.dumps(body).encode(),
                    headers={"content-type": "application/json"},
                )
            assert answer.status_code == status, (
                body if isinstance(body, dict) else body[:20],
                answer.text,
            )
            assert answer.json()["field"] == field, answer.text
            assert answer.json()["error"]
        unknown = await http.post(
            "/v1/forms/01NOPAGE0000000000000000000/submissions", json={"values": form()}
        )
        assert unknown.status_code == 404 and unknown.json()["field"] == "page_id"
        other_tenant = await http.post(
            url, json={"values": form()}, headers={"x-tenant-id": "someone-else"}
        )
        assert other_tenant.status_code == 404
    stats = await env.stats(channel.channel_id)
    assert (stats.leads, stats.unique_customers) == (0, 0)
    assert await env.customer_of(phone("+8613800138000")) is None


async def test_grpc_bad_input_and_other_tenants(env: Env) -> None:
    stub, tenant = env.stub, env.tenant
    campaign = await env.campaign()
    channel = await env.qr_channel(campaign.campaign_id, "mine-1")
    page = await env.page(campaign.campaign_id)

    async def code(call: object) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call  # type: ignore[misc]
        trailers = dict(err.value.trailing_metadata() or ())
        return err.value.code(), str(trailers.get("closedloop-field", ""))

    bad = grpc.StatusCode.INVALID_ARGUMENT
    missing = grpc.StatusCode.NOT_FOUND
    assert await code(
        stub.GetChannel(
            pb.GetChannelRequest(tenant_id="other-tenant", channel_id=channel.channel_id)
        )
    ) == (missing, "channel_id")
    assert await code(
        stub.GetLandingPage(
            pb.GetLandingPageRequest(tenant_id="other-tenant", page_id=page.page_id)
        )
    ) == (missing, "page_id")
    assert await code(
        stub.GetCampaign(pb.GetCampaignRequest(tenant_id=tenant, campaign_id="nope"))
    ) == (missing, "campaign_id")
    assert await code(stub.CreateCampaign(pb.CreateCampaignRequest(tenant_id=tenant))) == (
        bad,
        "name",
    )
    assert await code(
        stub.CreateChannel(
            pb.CreateChannelRequest(
                tenant_id=tenant, channel=pb.Channel(campaign_id=campaign.campaign_id, name="x")
            )
        )
    ) == (bad, "channel.kind")
    assert await code(
        stub.CreateChannel(
            pb.CreateChannelRequest(
                tenant_id=tenant,
                channel=pb.Channel(
                    campaign_id=campaign.campaign_id,
                    name="x",
                    kind=pb.CHANNEL_KIND_QR_TEMPORARY,
                    scene="s-2",
                ),
            )
        )
    ) == (bad, "expires_at")
    assert await code(
        stub.CreateChannel(
            pb.CreateChannelRequest(
                tenant_id=tenant,
                channel=pb.Channel(campaign_id="nope", name="x", kind=pb.CHANNEL_KIND_AD),
            )
        )
    ) == (missing, "campaign_id")
    taken = pb.Channel(
        campaign_id=campaign.campaign_id,
        name="x",
        kind=pb.CHANNEL_KIND_QR_PERMANENT,
        scene="mine-1",
    )
    assert await code(
        stub.CreateChannel(pb.CreateChannelRequest(tenant_id=tenant, channel=taken))
    ) == (grpc.StatusCode.ALREADY_EXISTS, "scene")
    consent_without_wording = pb.CreateLandingPageRequest(
        tenant_id=tenant,
        campaign_id=campaign.campaign_id,
        title="t",
        fields=[pb.FormField(name="ok", type=pb.FIELD_TYPE_CONSENT)],
    )
    assert await code(stub.CreateLandingPage(consent_without_wording)) == (
        bad,
        "fields[0].consent_wording",
    )
    assert await code(
        stub.RecordTouch(
            pb.RecordTouchRequest(tenant_id=tenant, channel_id="nope", kind=ev.TOUCH_KIND_CLICK)
        )
    ) == (missing, "channel_id")
    assert await code(
        stub.RecordTouch(pb.RecordTouchRequest(tenant_id=tenant, channel_id=channel.channel_id))
    ) == (bad, "kind")
    assert await code(
        stub.CaptureLead(
            pb.CaptureLeadRequest(
                tenant_id=tenant, page_id=page.page_id, values=form(phone_number="abc")
            )
        )
    ) == (bad, "values.phone")
    assert await code(
        stub.CaptureLead(
            pb.CaptureLeadRequest(tenant_id="other-tenant", page_id=page.page_id, values=form())
        )
    ) == (missing, "page_id")
    assert await code(stub.GetChannelStats(pb.GetChannelStatsRequest(tenant_id=tenant))) == (
        bad,
        "channel_id",
    )
    assert await code(stub.GetLead(pb.GetLeadRequest(tenant_id=tenant, lead_id="nope"))) == (
        missing,
        "lead_id",
    )
    listed = await stub.ListChannels(pb.ListChannelsRequest(tenant_id="other-tenant"))
    assert list(listed.channels) == []
    mine = await stub.ListChannels(
        pb.ListChannelsRequest(tenant_id=tenant, campaign_id=campaign.campaign_id)
    )
    assert [c.channel_id for c in mine.channels] == [channel.channel_id]


async def test_record_touch_resolves_the_customer_and_expired_codes_are_not_attributed(
    env: Env, nats_client: Client
) -> None:
    campaign = await env.campaign()
    live = await env.channel(
        campaign.campaign_id, kind=pb.CHANNEL_KIND_OFFLINE, name="store poster"
    )
    old = await env.qr_channel(campaign.campaign_id, "gone-1", expires_in_s=1)
    page = await env.page(campaign.campaign_id)
    who = openid("o-toucher", env.app_id)
    first = await env.stub.RecordTouch(
        pb.RecordTouchRequest(
            tenant_id=env.tenant,
            channel_id=live.channel_id,
            kind=ev.TOUCH_KIND_SCAN,
            identities=[who],
        )
    )
    from datetime import UTC, datetime, timedelta

    from acquisition_helpers import at

    late = await env.stub.RecordTouch(
        pb.RecordTouchRequest(
            tenant_id=env.tenant,
            channel_id=old.channel_id,
            kind=ev.TOUCH_KIND_SCAN,
            identities=[who],
            occurred_at=at(datetime.now(UTC) + timedelta(minutes=5)),
        )
    )
    assert late.touch.expired and not first.touch.expired
    assert late.touch.customer_id == first.touch.customer_id != ""
    lead = await env.stub.CaptureLead(
        pb.CaptureLeadRequest(
            tenant_id=env.tenant,
            page_id=page.page_id,
            values=form(phone_number="13700137000"),
            identities=[who],
        )
    )
    # The expired code's scan came last, but only the live channel is credited.
    assert lead.lead.channel_id == live.channel_id
    assert lead.lead.attribution.first_touch_id == first.touch.touch_id
    assert lead.lead.attribution.last_touch_id == first.touch.touch_id

    async def published() -> list[ev.TouchRecorded]:
        found = await read_events(
            nats_client,
            "ACQUISITION",
            "closedloop.acquisition.touch.recorded",
            tenant_id=env.tenant,
        )
        return [unpack(e, ev.TouchRecorded) for e in found]

    await eventually(published)
    assert {t.expired for t in await published()} == {True, False}


async def test_a_page_once_read_is_still_only_its_tenants(env: Env) -> None:
    """Landing pages are kept in process after the first read (the form's hot path): a page
    already served to its tenant stays invisible to every other tenant."""
    campaign = await env.campaign()
    page = await env.page(campaign.campaign_id)
    async with env.http() as http:
        served = await http.post(f"/v1/forms/{page.page_id}/submissions", json={"values": form()})
        assert served.status_code == 201
        other = await http.post(
            f"/v1/forms/{page.page_id}/submissions",
            json={"values": form()},
            headers={"x-tenant-id": "other-tenant"},
        )
    assert other.status_code == 404
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await env.stub.CaptureLead(
            pb.CaptureLeadRequest(tenant_id="other-tenant", page_id=page.page_id, values=form())
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    mine = await env.stub.GetLandingPage(
        pb.GetLandingPageRequest(tenant_id=env.tenant, page_id=page.page_id)
    )
    assert mine.page.page_id == page.page_id
