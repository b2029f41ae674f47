"""Concurrent submitters and WeChat retries arriving at once still make one lead / one touch."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import update

from acquisition_helpers import Env, event_xml, form, safe_post
from closedloop.acquisition.v1 import acquisition_pb2 as pb
from closedloop_acquisition.clock import now
from closedloop_acquisition.leads.service import LeadInput
from closedloop_acquisition.models import CampaignRow
from closedloop_acquisition.transport.flows import Flows
from loopkit.customers import ResolvedCustomer
from loopkit_dev.testing import answer_of, eventually


@pytest.mark.parametrize("services", ["sqlite"], indirect=True)
async def test_a_read_call_answers_beside_an_open_write_on_sqlite(env: Env) -> None:
    """Get and List calls read in a deferred transaction (`loopkit.db.reader_sessions`): on
    SQLite one answers while another connection holds the write lock. They began IMMEDIATE,
    so each queued behind the writer (up to the 30 s busy timeout, then again per retry)."""
    campaign = await env.campaign()
    async with env.acquisition.runtime.sessions() as writer, writer.begin():
        renamed = update(CampaignRow).where(CampaignRow.id == campaign.campaign_id)
        await writer.execute(renamed.values(name="renamed"))  # the write lock, held to the end
        request = pb.GetCampaignRequest(tenant_id=env.tenant, campaign_id=campaign.campaign_id)
        answer = await answer_of(env.stub.GetCampaign(request))
        assert answer.campaign.name == campaign.name  # what was committed


async def test_simultaneous_submissions_of_one_person_make_one_lead(env: Env) -> None:
    campaign = await env.campaign()
    channel = await env.channel(campaign.campaign_id, kind=pb.CHANNEL_KIND_AD)
    page = await env.page(campaign.campaign_id, channel.channel_id)
    async with env.http() as http:
        answers = await asyncio.gather(
            *(
                http.post(
                    f"/v1/forms/{page.page_id}/submissions",
                    json={"values": form(phone_number="13100131999", note=f"try {n}")},
                )
                for n in range(10)
            )
        )
    assert sorted(a.status_code for a in answers) == [200] * 9 + [201]
    assert len({a.json()["lead_id"] for a in answers}) == 1
    lead = await env.stub.GetLead(
        pb.GetLeadRequest(tenant_id=env.tenant, lead_id=answers[0].json()["lead_id"])
    )
    assert lead.lead.submissions == 10
    stats = await env.stats(channel.channel_id)
    assert (stats.leads, stats.repeat_submissions) == (1, 9)


async def test_a_first_lead_that_lost_the_race_is_counted_as_a_resubmission(env: Env) -> None:
    """Identity told this submission it created the customer, but a concurrent submission of the
    same person wrote the campaign's lead first (the race the test above makes by chance): the
    one-statement insert collides, and the lead is updated in a transaction instead."""
    campaign = await env.campaign()
    page = await env.page(campaign.campaign_id)
    async with env.http() as http:
        first = await http.post(
            f"/v1/forms/{page.page_id}/submissions",
            json={"values": form(phone_number="13100131777", note="first")},
        )
    assert first.status_code == 201
    lead_id = first.json()["lead_id"]
    lead = (await env.stub.GetLead(pb.GetLeadRequest(tenant_id=env.tenant, lead_id=lead_id))).lead
    flows = env.acquisition.runtime.parts["flows"]
    assert isinstance(flows, Flows)
    request = LeadInput(page_id=page.page_id, values=form(phone_number="13100131777", note="2nd"))
    prepared = await flows.read(lambda s: flows.leads.prepare_lead(s, env.tenant, request, now()))
    # What the losing submission holds: identity's answer that it created the customer.
    customer = ResolvedCustomer(customer_id=lead.customer_id, created=True)
    captured = await flows.write_lead(env.tenant, prepared, customer)
    assert (captured.repeat, captured.lead.id) == (True, lead_id)
    after = (await env.stub.GetLead(pb.GetLeadRequest(tenant_id=env.tenant, lead_id=lead_id))).lead
    assert (after.submissions, after.values["note"]) == (2, "2nd")


async def test_retries_arriving_together_are_stored_once(env: Env) -> None:
    campaign = await env.campaign()
    channel = await env.qr_channel(campaign.campaign_id, "burst-1")
    xml = event_xml("o-burst", "subscribe", key="qrscene_burst-1", create_time=int(time.time()))
    async with env.http() as http:
        requests = [safe_post(xml, env.app_id) for _ in range(3)]
        answers = await asyncio.gather(
            *(http.post(env.callback(), params=q, content=b) for q, b in requests)
        )
        assert [a.status_code for a in answers] == [200, 200, 200]
        # A later message: once it is processed, everything stored before it was too (the
        # worker takes messages in the order they arrived).
        query, body = safe_post(event_xml("o-marker", "SCAN", key="burst-1"), env.app_id)
        assert (await http.post(env.callback(), params=query, content=body)).status_code == 200

    async def marker_scanned() -> bool:
        return (await env.stats(channel.channel_id)).scans >= 2

    await eventually(marker_scanned)
    stats = await env.stats(channel.channel_id)
    assert (stats.scans, stats.subscribes) == (2, 1)
