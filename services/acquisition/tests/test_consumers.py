"""Following other services: identity's merges and erasures, referral's share visits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import grpc
import pytest
from nats.aio.client import Client
from sqlalchemy import select, text

from acquisition_helpers import Env, event_xml, form, openid, safe_post
from closedloop.acquisition.v1 import acquisition_pb2 as pb
from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1 import acquisition_events_pb2 as ev
from closedloop.events.v1 import conversion_events_pb2 as cpb
from closedloop.events.v1 import referral_events_pb2 as rpb
from closedloop.identity.v1 import identity_pb2
from closedloop_acquisition.clock import now
from closedloop_acquisition.customers.service import CustomerEvents
from closedloop_acquisition.leads.service import LeadInput
from closedloop_acquisition.models import TouchRow
from closedloop_acquisition.touches.service import ShareVisit
from closedloop_acquisition.transport.flows import Flows
from loopkit.customers import IdentityValue
from loopkit.events import new_envelope, subject_for, unpack
from loopkit_dev.testing import eventually, read_events, replay_event


async def _lead(env: Env, lead_id: str) -> pb.Lead | None:
    try:
        answer = await env.stub.GetLead(pb.GetLeadRequest(tenant_id=env.tenant, lead_id=lead_id))
    except Exception:
        return None
    return answer.lead


async def _referred_lead(
    env: Env, page: pb.LandingPage, visitor: c.Identity, phone: str, code: str
) -> pb.CaptureLeadResponse:
    """The visitor's lead on the referral page, submitted carrying the share code `code`."""
    return await env.stub.CaptureLead(
        pb.CaptureLeadRequest(
            tenant_id=env.tenant,
            page_id=page.page_id,
            values=form(phone_number=phone),
            identities=[visitor],
            referral_code=code,
        )
    )


async def _referral_page(env: Env) -> tuple[pb.Campaign, pb.Channel, pb.LandingPage]:
    """A campaign, its referral channel and its landing page."""
    campaign = await env.campaign()
    referral = await env.channel(
        campaign.campaign_id, kind=pb.CHANNEL_KIND_REFERRAL, name="friends"
    )
    return campaign, referral, await env.page(campaign.campaign_id)


async def _resolved(env: Env, open_id: str) -> str:
    """The customer id identity gives the official-account openid `open_id`."""
    resolved = await env.identity_stub.ResolveCustomer(
        identity_pb2.ResolveCustomerRequest(
            tenant_id=env.tenant, identities=[openid(open_id, env.app_id)]
        )
    )
    return resolved.customer.customer_id


async def _forget(env: Env, customer_id: str) -> None:
    await env.identity_stub.ForgetCustomer(
        identity_pb2.ForgetCustomerRequest(
            tenant_id=env.tenant, customer_id=customer_id, actor="test", reason="PIPL request"
        )
    )


async def test_a_merge_moves_touches_and_folds_two_leads_of_one_campaign(env: Env) -> None:
    campaign = await env.campaign()
    channel = await env.channel(campaign.campaign_id, kind=pb.CHANNEL_KIND_OFFLINE)
    page = await env.page(campaign.campaign_id, channel.channel_id)
    first = await env.stub.CaptureLead(
        pb.CaptureLeadRequest(
            tenant_id=env.tenant,
            page_id=page.page_id,
            values=form(phone_number="13600136001", note="a"),
        )
    )
    second = await env.stub.CaptureLead(
        pb.CaptureLeadRequest(
            tenant_id=env.tenant,
            page_id=page.page_id,
            values=form(phone_number="13600136002", note="b"),
        )
    )
    assert first.lead.customer_id != second.lead.customer_id
    assert (await env.stats(channel.channel_id)).leads == 2

    merged = await env.identity_stub.MergeCustomers(
        identity_pb2.MergeCustomersRequest(
            tenant_id=env.tenant,
            customer_ids=[first.lead.customer_id, second.lead.customer_id],
            actor="test",
            reason="same person",
        )
    )
    survivor = merged.survivor.customer_id

    async def folded() -> bool:
        lead = await _lead(env, second.lead.lead_id)
        return lead is not None and lead.lead_id == first.lead.lead_id

    # The folded lead's id answers with the lead it was folded into.
    await eventually(folded)
    kept = await _lead(env, first.lead.lead_id)
    assert kept is not None
    assert kept.customer_id == survivor and kept.submissions == 2
    stats = await env.stats(channel.channel_id)
    assert (stats.leads, stats.repeat_submissions, stats.unique_customers) == (1, 1, 1)


async def test_an_unmerge_unfolds_the_lead_that_came_with_the_merged_customer(
    env: Env, nats_client: Client
) -> None:
    campaign = await env.campaign()
    channel = await env.channel(campaign.campaign_id, kind=pb.CHANNEL_KIND_OFFLINE)
    page = await env.page(campaign.campaign_id, channel.channel_id)
    other = await env.campaign()
    other_page = await env.page(other.campaign_id, channel.channel_id)

    async def capture(page_id: str, phone: str) -> pb.Lead:
        answer = await env.stub.CaptureLead(
            pb.CaptureLeadRequest(
                tenant_id=env.tenant, page_id=page_id, values=form(phone_number=phone, note=phone)
            )
        )
        return answer.lead

    first = await capture(page.page_id, "13600136011")
    second = await capture(page.page_id, "13600136012")
    second_other = await capture(other_page.page_id, "13600136012")
    assert env.identity is not None
    merged = await env.identity_stub.MergeCustomers(
        identity_pb2.MergeCustomersRequest(
            tenant_id=env.tenant,
            customer_ids=[first.customer_id, second.customer_id],
            actor="test",
            reason="same person",
        )
    )
    assert merged.survivor.customer_id == first.customer_id

    async def folded() -> bool:
        lead = await _lead(env, second.lead_id)
        return lead is not None and lead.lead_id == first.lead_id

    await eventually(folded)

    await env.identity_stub.UnmergeCustomer(
        identity_pb2.UnmergeCustomerRequest(
            tenant_id=env.tenant, customer_id=second.customer_id, actor="test", reason="two"
        )
    )

    async def state() -> tuple[object, ...]:
        leads = [await _lead(env, i) for i in (first.lead_id, second.lead_id, second_other.lead_id)]
        return tuple(
            None if lead is None else (lead.lead_id, lead.customer_id, lead.submissions)
            for lead in leads
        )

    want = (
        (first.lead_id, first.customer_id, 1),
        (second.lead_id, second.customer_id, 1),
        (second_other.lead_id, second.customer_id, 1),
    )

    async def unfolded() -> bool:
        return await state() == want

    await eventually(unfolded)
    stats = await env.stats(channel.channel_id)
    assert (stats.leads, stats.unique_customers) == (3, 2)

    # The same customer.unmerged delivered again changes nothing.
    [unmerged] = [
        e
        for e in await read_events(nats_client, "IDENTITY", tenant_id=env.tenant)
        if e.type == "customer.unmerged"
    ]
    await replay_event(nats_client, unmerged, durable="acquisition-identity")
    assert await state() == want


async def test_an_unmerge_gives_each_fission_participation_back_with_its_invitations(
    env: Env,
) -> None:
    campaign = (
        await env.stub.CreateCampaign(
            pb.CreateCampaignRequest(
                tenant_id=env.tenant, name="Bring 5", fission_goal=5, fission_reward="mug"
            )
        )
    ).campaign

    async def join(who: str) -> pb.FissionParticipant:
        answer = await env.stub.JoinFission(
            pb.JoinFissionRequest(
                tenant_id=env.tenant,
                campaign_id=campaign.campaign_id,
                identities=[openid(who, env.app_id)],
                app_id=env.app_id,
            )
        )
        return answer.participant

    first, second = await join("o-fx-1"), await join("o-fx-2")
    async with env.http() as http:
        query, body = safe_post(
            event_xml("o-fx-friend", "subscribe", key=f"qrscene_{second.scene}"), env.app_id
        )
        assert (await http.post(env.callback(), params=query, content=body)).status_code == 200

    async def progress(customer: str) -> tuple[str, int] | None:
        try:
            answer = await env.stub.GetFissionProgress(
                pb.GetFissionProgressRequest(
                    tenant_id=env.tenant, campaign_id=campaign.campaign_id, customer_id=customer
                )
            )
        except grpc.aio.AioRpcError:
            return None
        return answer.participant.scene, answer.participant.invited

    async def invited() -> bool:
        return await progress(second.customer_id) == (second.scene, 1)

    await eventually(invited)
    await env.identity_stub.MergeCustomers(
        identity_pb2.MergeCustomersRequest(
            tenant_id=env.tenant,
            customer_ids=[first.customer_id, second.customer_id],
            actor="test",
            reason="same person",
        )
    )

    async def folded() -> bool:
        return await progress(first.customer_id) == (first.scene, 1)

    await eventually(folded)
    await env.identity_stub.UnmergeCustomer(
        identity_pb2.UnmergeCustomerRequest(
            tenant_id=env.tenant, customer_id=second.customer_id, actor="test", reason="two"
        )
    )

    async def each_their_own() -> bool:
        return (await progress(first.customer_id), await progress(second.customer_id)) == (
            (first.scene, 0),
            (second.scene, 1),
        )

    await eventually(each_their_own)


async def test_forget_erases_form_values_and_openids_but_keeps_the_counts(env: Env) -> None:
    campaign = await env.campaign()
    channel = await env.qr_channel(campaign.campaign_id, "forget-1")
    page = await env.page(campaign.campaign_id)
    who = openid("o-forget", env.app_id)
    await env.stub.RecordTouch(
        pb.RecordTouchRequest(
            tenant_id=env.tenant,
            channel_id=channel.channel_id,
            kind=ev.TOUCH_KIND_SCAN,
            identities=[who],
        )
    )
    captured = await env.stub.CaptureLead(
        pb.CaptureLeadRequest(
            tenant_id=env.tenant,
            page_id=page.page_id,
            values=form(phone_number="13500135000"),
            identities=[who],
        )
    )
    await env.identity_stub.ForgetCustomer(
        identity_pb2.ForgetCustomerRequest(
            tenant_id=env.tenant,
            customer_id=captured.lead.customer_id,
            actor="test",
            reason="PIPL request",
        )
    )

    async def erased() -> bool:
        lead = await _lead(env, captured.lead.lead_id)
        return lead is not None and not lead.values

    await eventually(erased)
    stats = await env.stats(channel.channel_id)
    assert (stats.scans, stats.leads) == (1, 1)


async def test_a_share_visit_credits_the_visitors_lead_to_the_referrer(
    env: Env, nats_client: Client
) -> None:
    campaign, referral, page = await _referral_page(env)
    referrer_id = await _resolved(env, "o-referrer")
    visitor = openid("o-newcomer", env.app_id)
    visit = new_envelope(
        producer="referral",
        event_type="share_visited",
        tenant_id=env.tenant,
        customer_id="",
        payload=rpb.ShareVisited(
            visit_id="v-1",
            code="REF-ABC",
            program_id="p-1",
            referrer_customer_id=referrer_id,
            channel_id=referral.channel_id,
            campaign_id=campaign.campaign_id,
            visitor_identities=[visitor],
            share_id="s-1",
        ),
    )
    js = nats_client.jetstream()
    subject = subject_for("referral", "share_visited")
    # Delivered twice (a republish JetStream does not de-duplicate): still one touch.
    for msg_id in (visit.id, visit.id + "-again"):
        headers = {"Nats-Msg-Id": msg_id}
        await js.publish(subject, visit.SerializeToString(), stream="REFERRAL", headers=headers)
    # Then an anonymous visit of someone else: once it is counted, the copy was handled too.
    marker = new_envelope(
        producer="referral",
        event_type="share_visited",
        tenant_id=env.tenant,
        customer_id="",
        payload=rpb.ShareVisited(visit_id="v-2", code="REF-ABC", channel_id=referral.channel_id),
    )
    await js.publish(subject, marker.SerializeToString(), stream="REFERRAL")

    async def visited() -> bool:
        return (await env.stats(referral.channel_id)).visits == 2

    await eventually(visited)
    lead = await env.stub.CaptureLead(
        pb.CaptureLeadRequest(
            tenant_id=env.tenant,
            page_id=page.page_id,
            values=form(phone_number="13300133000"),
            identities=[visitor],
        )
    )
    assert lead.lead.channel_id == referral.channel_id
    assert lead.lead.attribution.referrer_customer_id == referrer_id
    assert lead.lead.attribution.referral_code == "REF-ABC"

    async def captured() -> list[ev.LeadCaptured]:
        found = await read_events(
            nats_client, "ACQUISITION", "closedloop.acquisition.lead.captured", tenant_id=env.tenant
        )
        return [unpack(e, ev.LeadCaptured) for e in found]

    await eventually(captured)
    (event,) = await captured()
    assert event.attribution.referrer_customer_id == referrer_id
    assert (await env.stats(referral.channel_id)).visits == 2


async def test_a_forgotten_referrer_is_named_by_nobody_elses_touch_or_lead(
    env: Env, nats_client: Client
) -> None:
    """The newcomer's touch and lead stay (with the referral code, for the counts), but neither
    names the forgotten referrer any more."""
    campaign, referral, page = await _referral_page(env)
    referrer_id = await _resolved(env, "o-forgotten-referrer")
    visitor = openid("o-their-newcomer", env.app_id)
    await _visit(
        env,
        nats_client,
        referral.channel_id,
        referrer_id,
        visitor,
        code="REF-GONE",
        campaign_id=campaign.campaign_id,
    )

    async def visited() -> bool:
        return (await env.stats(referral.channel_id)).visits == 1

    await eventually(visited)
    captured = await env.stub.CaptureLead(
        pb.CaptureLeadRequest(
            tenant_id=env.tenant,
            page_id=page.page_id,
            values=form(phone_number="13300133022"),
            identities=[visitor],
        )
    )
    assert captured.lead.attribution.referrer_customer_id == referrer_id

    await _forget(env, referrer_id)

    async def unnamed() -> bool:
        lead = await _lead(env, captured.lead.lead_id)
        return lead is not None and lead.attribution.referrer_customer_id == ""

    await eventually(unnamed)
    lead = await _lead(env, captured.lead.lead_id)
    assert lead is not None
    assert lead.attribution.referral_code == "REF-GONE"
    assert lead.channel_id == referral.channel_id
    async with env.acquisition.runtime.sessions() as session:
        touches = (
            await session.execute(select(TouchRow).where(TouchRow.tenant_id == env.tenant))
        ).scalars()
        kept = [(t.referral_code, t.referrer_customer_id) for t in touches]
    assert kept == [("REF-GONE", None)]  # the newcomer's visit, naming nobody
    stats = await env.stats(referral.channel_id)
    assert (stats.visits, stats.leads) == (1, 1)


async def _visit(
    env: Env,
    nats_client: Client,
    channel_id: str,
    referrer_id: str,
    visitor: c.Identity,
    *,
    code: str,
    customer_id: str = "",
    campaign_id: str = "",
) -> None:
    """referral's share_visited for `visitor` on `code` of `referrer_id`, newly published."""
    visit = new_envelope(
        producer="referral",
        event_type="share_visited",
        tenant_id=env.tenant,
        customer_id=customer_id,
        payload=rpb.ShareVisited(
            visit_id=f"v-{code}",
            code=code,
            referrer_customer_id=referrer_id,
            channel_id=channel_id,
            campaign_id=campaign_id,
            visitor_identities=[visitor],
        ),
    )
    await nats_client.jetstream().publish(
        subject_for("referral", "share_visited"),
        visit.SerializeToString(),
        stream="REFERRAL",
        headers={"Nats-Msg-Id": visit.id},
    )


async def _touch_referrers(env: Env) -> list[tuple[str | None, str | None]]:
    async with env.acquisition.runtime.sessions() as session:
        rows = await session.execute(
            select(TouchRow.referral_code, TouchRow.referrer_customer_id)
            .where(TouchRow.tenant_id == env.tenant)
            .order_by(TouchRow.id)
        )
        return [(code, referrer) for code, referrer in rows.all()]


async def test_an_unmerge_after_the_referrer_is_forgotten_gives_the_lead_back_without_them(
    env: Env, nats_client: Client
) -> None:
    """The merged customer's lead, folded into the survivor's, was referred by R; R is forgotten
    while the merge stands: the lead the unmerge gives back names no referrer (the move log's
    copy of it named R)."""
    _, referral, page = await _referral_page(env)
    first = await env.stub.CaptureLead(
        pb.CaptureLeadRequest(
            tenant_id=env.tenant, page_id=page.page_id, values=form(phone_number="13300133041")
        )
    )
    referrer_id = await _resolved(env, "o-folded-referrer")
    visitor = openid("o-folded-newcomer", env.app_id)
    await _visit(env, nats_client, referral.channel_id, referrer_id, visitor, code="REF-FOLD")

    async def visited() -> bool:
        return (await env.stats(referral.channel_id)).visits == 1

    await eventually(visited)
    second = await env.stub.CaptureLead(
        pb.CaptureLeadRequest(
            tenant_id=env.tenant,
            page_id=page.page_id,
            values=form(phone_number="13300133042"),
            identities=[visitor],
        )
    )
    assert second.lead.attribution.referrer_customer_id == referrer_id
    merged = await env.identity_stub.MergeCustomers(
        identity_pb2.MergeCustomersRequest(
            tenant_id=env.tenant,
            customer_ids=[first.lead.customer_id, second.lead.customer_id],
            actor="test",
            reason="same person",
        )
    )
    assert merged.survivor.customer_id == first.lead.customer_id

    async def folded() -> bool:
        lead = await _lead(env, second.lead.lead_id)
        return lead is not None and lead.lead_id == first.lead.lead_id

    await eventually(folded)
    await _forget(env, referrer_id)

    async def touch_unnamed() -> bool:
        return await _touch_referrers(env) == [("REF-FOLD", None)]

    await eventually(touch_unnamed)
    await env.identity_stub.UnmergeCustomer(
        identity_pb2.UnmergeCustomerRequest(
            tenant_id=env.tenant, customer_id=second.lead.customer_id, actor="test", reason="two"
        )
    )

    async def unfolded() -> bool:
        lead = await _lead(env, second.lead.lead_id)
        return lead is not None and lead.lead_id == second.lead.lead_id

    await eventually(unfolded)
    back = await _lead(env, second.lead.lead_id)
    assert back is not None
    assert back.customer_id == second.lead.customer_id
    assert back.attribution.referral_code == "REF-FOLD"
    assert back.attribution.referrer_customer_id == ""


async def test_a_visit_naming_a_forgotten_referrer_credits_nobody(
    env: Env, nats_client: Client
) -> None:
    """A share_visited naming R that reaches acquisition after R's forget (published again, or
    late): the visit counts, but no touch names R and the visitor's lead is not credited."""
    _, referral, page = await _referral_page(env)
    referrer_id = await _resolved(env, "o-late-forgotten")
    visitor = openid("o-after-forget", env.app_id)
    captured = await _referred_lead(env, page, visitor, "13300133051", "REF-AFTER")
    # An earlier visit of someone else names R: once it no longer does, the forget is done.
    other = openid("o-before-forget", env.app_id)
    await _visit(env, nats_client, referral.channel_id, referrer_id, other, code="REF-BEFORE")

    async def named() -> bool:
        return await _touch_referrers(env) == [("REF-BEFORE", referrer_id)]

    await eventually(named)
    await _forget(env, referrer_id)

    async def forgotten() -> bool:
        return await _touch_referrers(env) == [("REF-BEFORE", None)]

    await eventually(forgotten)
    await _visit(
        env,
        nats_client,
        referral.channel_id,
        referrer_id,
        visitor,
        code="REF-AFTER",
        customer_id=captured.lead.customer_id,
    )

    async def counted() -> bool:
        return (await env.stats(referral.channel_id)).visits == 2

    await eventually(counted)
    assert await _touch_referrers(env) == [("REF-BEFORE", None), ("REF-AFTER", None)]
    lead = await _lead(env, captured.lead.lead_id)
    assert lead is not None
    assert lead.attribution.referral_code == "REF-AFTER"
    assert lead.attribution.referrer_customer_id == ""


async def test_a_visit_naming_a_merged_away_referrer_credits_the_survivor(
    env: Env, nats_client: Client
) -> None:
    """Identity merged the referrer M into S; a share_visited naming M reaches acquisition after
    the merge (M's code was shared before it): the touch and the visitor's lead name S, not M,
    whom the merge's move of touches and leads had already passed."""
    _, referral, page = await _referral_page(env)
    survivor_id = await _resolved(env, "o-surviving-referrer")
    merged_id = await _resolved(env, "o-merged-referrer")
    visitor = openid("o-visitor-of-merged", env.app_id)
    captured = await _referred_lead(env, page, visitor, "13300133071", "REF-MERGED")
    # A visit naming M before the merge: once it names S, acquisition has handled the merge.
    other = openid("o-before-merge", env.app_id)
    await _visit(env, nats_client, referral.channel_id, merged_id, other, code="REF-EARLY")

    async def named() -> bool:
        return await _touch_referrers(env) == [("REF-EARLY", merged_id)]

    await eventually(named)
    merged = await env.identity_stub.MergeCustomers(
        identity_pb2.MergeCustomersRequest(
            tenant_id=env.tenant,
            customer_ids=[survivor_id, merged_id],
            actor="test",
            reason="same person",
        )
    )
    assert merged.survivor.customer_id == survivor_id

    async def moved() -> bool:
        return await _touch_referrers(env) == [("REF-EARLY", survivor_id)]

    await eventually(moved)
    await _visit(
        env,
        nats_client,
        referral.channel_id,
        merged_id,
        visitor,
        code="REF-MERGED",
        customer_id=captured.lead.customer_id,
    )

    async def counted() -> bool:
        return (await env.stats(referral.channel_id)).visits == 2

    await eventually(counted)
    assert await _touch_referrers(env) == [
        ("REF-EARLY", survivor_id),
        ("REF-MERGED", survivor_id),
    ]
    lead = await _lead(env, captured.lead.lead_id)
    assert lead is not None
    assert lead.attribution.referrer_customer_id == survivor_id
    # A touch recorded through the API naming M names S too.
    touch = await env.stub.RecordTouch(
        pb.RecordTouchRequest(
            tenant_id=env.tenant,
            channel_id=referral.channel_id,
            kind=ev.TOUCH_KIND_VISIT,
            referral_code="REF-API",
            referrer_customer_id=merged_id,
        )
    )
    assert touch.touch.referrer_customer_id == survivor_id


async def _merge(env: Env, survivor_id: str, merged_id: str) -> None:
    merged = await env.identity_stub.MergeCustomers(
        identity_pb2.MergeCustomersRequest(
            tenant_id=env.tenant,
            customer_ids=[survivor_id, merged_id],
            actor="test",
            reason="same person",
        )
    )
    assert merged.survivor.customer_id == survivor_id


async def test_a_merge_moves_the_referrer_of_others_leads_and_an_unmerge_gives_it_back(
    env: Env,
) -> None:
    """M referred a newcomer's lead (`attribution.referrer_customer_id`, a key inside the lead's
    JSON); identity merges M into S: the lead and the touch name S. The unmerge gives M back."""
    _, referral, page = await _referral_page(env)
    survivor_id = await _resolved(env, "o-referrer-survivor")
    merged_id = await _resolved(env, "o-referrer-merged")
    visitor = openid("o-newcomer-of-merged", env.app_id)
    # The newcomer's touch names M through the RecordTouch API; the lead is credited from it.
    await env.stub.RecordTouch(
        pb.RecordTouchRequest(
            tenant_id=env.tenant,
            channel_id=referral.channel_id,
            kind=ev.TOUCH_KIND_VISIT,
            identities=[visitor],
            referral_code="REF-MOVE",
            referrer_customer_id=merged_id,
        )
    )
    captured = await _referred_lead(env, page, visitor, "13300133081", "")
    assert captured.lead.attribution.referrer_customer_id == merged_id

    async def named(referrer_id: str) -> bool:
        lead = await _lead(env, captured.lead.lead_id)
        touches = await _touch_referrers(env)
        return (
            lead is not None
            and lead.attribution.referrer_customer_id == referrer_id
            and touches == [("REF-MOVE", referrer_id)]
        )

    await _merge(env, survivor_id, merged_id)
    await eventually(lambda: named(survivor_id))
    await env.identity_stub.UnmergeCustomer(
        identity_pb2.UnmergeCustomerRequest(
            tenant_id=env.tenant, customer_id=merged_id, actor="test", reason="two people"
        )
    )
    await eventually(lambda: named(merged_id))
    lead = await _lead(env, captured.lead.lead_id)
    assert lead is not None
    assert lead.attribution.referral_code == "REF-MOVE"
    assert lead.customer_id == captured.lead.customer_id


async def test_a_touch_whose_referrer_is_merged_while_it_is_recorded_names_the_survivor(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RecordTouch asks identity for the referrer's live id before its transaction. Here the
    merge of M into S lands right after that answer and acquisition applies it before the touch
    commits (its move of touches passes this one): identity, asked again after the commit,
    has the touch name S instead of the merged-away M."""
    runtime = env.acquisition.runtime
    flows: Flows = runtime.parts["flows"]
    _, referral, _ = await _referral_page(env)
    survivor_id = await _resolved(env, "o-api-survivor")
    merged_id = await _resolved(env, "o-api-merged")

    async def touch(code: str) -> pb.RecordTouchResponse:
        return await env.stub.RecordTouch(
            pb.RecordTouchRequest(
                tenant_id=env.tenant,
                channel_id=referral.channel_id,
                kind=ev.TOUCH_KIND_VISIT,
                referral_code=code,
                referrer_customer_id=merged_id,
            )
        )

    # A touch naming M before: once it names S, acquisition has applied the merge.
    await touch("REF-API-EARLY")
    first_answer = flows.customers.live_referrer
    merges: list[str] = []

    async def answer_then_merge(tenant_id: str, customer_id: str) -> str:
        answer = await first_answer(tenant_id, customer_id)
        if not merges:
            await _merge(env, survivor_id, merged_id)
            merges.append(merged_id)

            async def applied() -> bool:
                return await _touch_referrers(env) == [("REF-API-EARLY", survivor_id)]

            await eventually(applied)
        return answer

    monkeypatch.setattr(flows.customers, "live_referrer", answer_then_merge)
    late = await touch("REF-API-LATE")
    assert merges  # the merge came between the answer and the commit
    assert late.touch.referrer_customer_id == survivor_id
    assert await _touch_referrers(env) == [
        ("REF-API-EARLY", survivor_id),
        ("REF-API-LATE", survivor_id),
    ]


# A forget or a merge waiting for a visit's referrer lock (acquisition's two-key space 0x7EF0).
WAITING_FOR_VISIT = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    " AND classid = 32496 AND objsubid = 2"
)


# A statement of this database waiting for a lock another transaction holds (row, advisory).
WAITING_FOR_A_LOCK = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


async def _handled_or_waiting(env: Env, nats_client: Client, event_type: str) -> None:
    """Until acquisition's identity consumer has handled the tenant's `event_type` (identity
    published it), or one of its statements waits for a lock (the caller's open transaction)."""
    runtime = env.acquisition.runtime
    js = nats_client.jetstream()

    async def on_stream() -> bool:
        events = await read_events(nats_client, "IDENTITY", tenant_id=env.tenant)
        return any(e.type == event_type for e in events)

    await eventually(on_stream)
    last = (await js.stream_info("IDENTITY")).state.last_seq

    async def handled_or_waiting() -> bool:
        info = await js.consumer_info("IDENTITY", "acquisition-identity")
        if info.ack_floor is not None and info.ack_floor.stream_seq >= last:
            return True  # handled while the caller's transaction is still open
        async with runtime.sessions() as probe:
            return bool((await probe.execute(WAITING_FOR_A_LOCK)).scalar_one())

    await eventually(handled_or_waiting)


# SQLite has one writer at a time: the forget's UPDATE waits for the visit's INSERT anyway.
@pytest.mark.parametrize("services", ["postgres"], indirect=True)
async def test_a_visit_in_flight_during_the_referrers_forget_is_unnamed_by_the_forget(
    env: Env, nats_client: Client
) -> None:
    """A visit asked identity about R just before R's forget and commits after acquisition ran
    the forget: the forget waits for it (PostgreSQL), so its touch and credit are erased too.
    Forced here: the visit's transaction stays open while the forget is processed."""
    runtime = env.acquisition.runtime
    _, referral, page = await _referral_page(env)
    referrer_id = await _resolved(env, "o-racing-referrer")
    visitor = openid("o-racing-visitor", env.app_id)
    captured = await _referred_lead(env, page, visitor, "13300133061", "REF-RACE")
    flows: Flows = runtime.parts["flows"]
    visit = _share_visit(referral.channel_id, captured.lead.customer_id, "REF-RACE", referrer_id)
    async with runtime.sessions() as session, session.begin():
        await flows.touches.share_visited(session, env.tenant, visit)  # R still known
        await _forget(env, referrer_id)
        await _handled_or_waiting(env, nats_client, "customer.forgotten")
    # The visit committed; the forget ran before it or after it, never beside it.

    async def unnamed() -> bool:
        return await _touch_referrers(env) == [("REF-RACE", None)]

    await eventually(unnamed)
    lead = await _lead(env, captured.lead.lead_id)
    assert lead is not None
    assert lead.attribution.referrer_customer_id == ""


# SQLite has one writer at a time: the merge's UPDATEs wait for the visit's INSERT anyway.
@pytest.mark.parametrize("services", ["postgres"], indirect=True)
async def test_a_visit_in_flight_during_the_referrers_merge_is_moved_by_the_merge(
    env: Env, nats_client: Client
) -> None:
    """A visit asked identity about M just before M was merged into S, and commits after
    acquisition moved M's touches and leads: the merge waits for it (PostgreSQL), so its touch
    and the lead it credits name S, not the merged-away M. Forced here: the visit's
    transaction stays open while the merge is processed."""
    runtime = env.acquisition.runtime
    _, referral, page = await _referral_page(env)
    survivor_id = await _resolved(env, "o-racing-survivor")
    merged_id = await _resolved(env, "o-racing-merged")
    visitor = openid("o-visitor-of-racing", env.app_id)
    captured = await _referred_lead(env, page, visitor, "13300133091", "REF-MRACE")
    flows: Flows = runtime.parts["flows"]
    visit = _share_visit(referral.channel_id, captured.lead.customer_id, "REF-MRACE", merged_id)
    async with runtime.sessions() as session, session.begin():
        await flows.touches.share_visited(session, env.tenant, visit)  # M not merged yet
        await _merge(env, survivor_id, merged_id)
        await _handled_or_waiting(env, nats_client, "customer.merged")
    # The visit committed; the merge ran before it or after it, never beside it.

    async def moved() -> bool:
        lead = await _lead(env, captured.lead.lead_id)
        return await _touch_referrers(env) == [("REF-MRACE", survivor_id)] and (
            lead is not None and lead.attribution.referrer_customer_id == survivor_id
        )

    await eventually(moved)


async def _lead_captured_during(
    env: Env,
    nats_client: Client,
    referrer_id: str,
    event_type: str,
    *,
    act: Callable[[], Awaitable[object]],
    phone: str,
) -> str:
    """A newcomer's lead credited to `referrer_id` off their visit touch, its transaction held
    open while identity does `act` and acquisition handles its `event_type` (or waits for the
    lead). Returns the lead's id, committed."""
    runtime = env.acquisition.runtime
    _, referral, page = await _referral_page(env)
    visitor = IdentityValue(kind="wechat_openid", scope=env.app_id, value=f"o-v-{referrer_id}")
    await env.stub.RecordTouch(
        pb.RecordTouchRequest(
            tenant_id=env.tenant,
            channel_id=referral.channel_id,
            kind=ev.TOUCH_KIND_VISIT,
            identities=[openid(visitor.value, env.app_id)],
            referral_code="REF-CAPTURE",
            referrer_customer_id=referrer_id,
        )
    )
    flows: Flows = runtime.parts["flows"]
    request = LeadInput(
        page_id=page.page_id, values=form(phone_number=phone), identities=(visitor,)
    )
    async with runtime.sessions() as session, session.begin():
        prepared = await flows.leads.prepare_lead(session, env.tenant, request, now())
        customer = await flows.leads.resolve_lead(env.tenant, prepared)
        captured = await flows.leads.capture_lead(session, env.tenant, prepared, customer, now())
        assert captured.lead.attribution["referrer_customer_id"] == referrer_id  # not yet
        await act()
        await _handled_or_waiting(env, nats_client, event_type)
    return captured.lead.id


async def _referrer_of_lead(env: Env, lead_id: str) -> str | None:
    lead = await _lead(env, lead_id)
    return None if lead is None else lead.attribution.referrer_customer_id


@pytest.mark.parametrize("services", ["postgres"], indirect=True)
async def test_a_lead_captured_during_its_referrers_merge_is_moved_by_the_merge(
    env: Env, nats_client: Client
) -> None:
    """The newcomer's lead reads M off their visit touch just before M is merged into S, and
    commits after acquisition moved M's touches and leads: the lead holds that touch, which the
    merge writes before it moves leads, so the merge waits and moves the lead too (PostgreSQL)."""
    survivor_id = await _resolved(env, "o-capture-survivor")
    merged_id = await _resolved(env, "o-capture-merged")
    lead_id = await _lead_captured_during(
        env,
        nats_client,
        merged_id,
        "customer.merged",
        act=lambda: _merge(env, survivor_id, merged_id),
        phone="13300133095",
    )

    async def moved() -> bool:
        return await _referrer_of_lead(env, lead_id) == survivor_id

    await eventually(moved)


@pytest.mark.parametrize("services", ["postgres"], indirect=True)
async def test_a_lead_captured_during_its_referrers_forget_is_untied_by_the_forget(
    env: Env, nats_client: Client
) -> None:
    """The same with a forget of R: it unties touches before leads, so it waits for the lead
    holding R's touch and unties it too."""
    referrer_id = await _resolved(env, "o-capture-forgotten")
    lead_id = await _lead_captured_during(
        env,
        nats_client,
        referrer_id,
        "customer.forgotten",
        act=lambda: _forget(env, referrer_id),
        phone="13300133096",
    )

    async def untied() -> bool:
        return await _referrer_of_lead(env, lead_id) == ""

    await eventually(untied)


@pytest.mark.parametrize("services", ["postgres"], indirect=True)
async def test_a_poster_scan_in_flight_during_the_hosts_forget_is_unnamed_by_the_forget(
    env: Env, nats_client: Client
) -> None:
    """A newcomer subscribes through the fission poster of H as H is forgotten: the callback
    read H off the participation (row-locked) before the forget and commits after. The forget
    deletes the participation before it unties touches, so it waits and unties this one too
    (it deleted it last, and the subscribe's touches kept naming H)."""
    runtime = env.acquisition.runtime
    flows: Flows = runtime.parts["flows"]
    campaign = (
        await env.stub.CreateCampaign(
            pb.CreateCampaignRequest(
                tenant_id=env.tenant, name="Bring friends", fission_goal=5, fission_reward="mug"
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
    friend = IdentityValue(kind="wechat_openid", scope=env.app_id, value="o-hosts-friend")
    customer = await flows.customers.resolve(env.tenant, [friend])
    message = {
        "ToUserName": "gh_test",
        "FromUserName": friend.value,
        "CreateTime": str(int(now().timestamp())),
        "MsgType": "event",
        "Event": "subscribe",
        "EventKey": f"qrscene_{host.scene}",
    }
    async with runtime.sessions() as session, session.begin():
        accepted = await flows.callbacks.accept(session, env.tenant, env.app_id, message, now())
        await flows.callbacks.process(session, accepted.inbox_id, customer, now())  # H known
        await _forget(env, host.customer_id)
        await _handled_or_waiting(env, nats_client, "customer.forgotten")

    async def unnamed() -> bool:
        return await _touch_referrers(env) == [(None, None), (None, None)]  # scan, subscribe

    await eventually(unnamed)


@pytest.mark.parametrize("services", ["postgres"], indirect=True)
async def test_visits_and_forgets_of_two_referrers_in_opposite_orders_do_not_deadlock(
    env: Env,
) -> None:
    """A consumer applies a batch of events in one transaction: a batch of visits naming R1
    then R2 beside a batch of forgets of R2 then R1. The forget used to keep R2's lock to its
    commit while it waited for R1's, which the visits held while they waited for R2's: a
    deadlock (PostgreSQL failed one batch after `deadlock_timeout`). Now a forget only waits
    for the visits in flight and holds nothing, so the visits go on, then the forgets."""
    runtime = env.acquisition.runtime
    _, referral, _ = await _referral_page(env)
    first = await _resolved(env, "o-first-of-two")
    second = await _resolved(env, "o-second-of-two")
    flows: Flows = runtime.parts["flows"]
    forgets = CustomerEvents(flows.leads, flows.fission)

    def visit(referrer_id: str) -> ShareVisit:
        return _share_visit(referral.channel_id, "", f"REF-{referrer_id[-6:]}", referrer_id)

    async with (
        runtime.sessions() as visits,
        visits.begin(),
        runtime.sessions() as forget,
        forget.begin(),
    ):
        await flows.touches.share_visited(visits, env.tenant, visit(first))  # R1 still known
        for referrer_id in (first, second):
            await _forget(env, referrer_id)
        await forgets.forgotten(forget, env.tenant, [second])
        # The forget of R1 waits for the visits' transaction, which goes on with R2.
        forget_first = asyncio.ensure_future(forgets.forgotten(forget, env.tenant, [first]))

        async def waiting() -> bool:
            async with runtime.sessions() as probe:
                return bool((await probe.execute(WAITING_FOR_VISIT)).scalar_one())

        await eventually(waiting)
        await asyncio.wait_for(
            flows.touches.share_visited(visits, env.tenant, visit(second)), timeout=30
        )
        await visits.commit()
        await asyncio.wait_for(forget_first, timeout=30)
    # The forgets ran after the visits: neither touch names its referrer any more.
    assert sorted(await _touch_referrers(env)) == sorted(
        [(f"REF-{first[-6:]}", None), (f"REF-{second[-6:]}", None)]
    )


async def test_a_visit_that_arrives_after_the_lead_still_credits_the_referrer(
    env: Env, nats_client: Client
) -> None:
    """The newcomer's form was faster than the share_visited event: the lead carries the code,
    and once the visit arrives it names the referrer too. A self-visit credits nobody."""
    _, referral, page = await _referral_page(env)
    referrer_id = await _resolved(env, "o-early-referrer")
    visitor = openid("o-early-bird", env.app_id)
    captured = await _referred_lead(env, page, visitor, "13300133011", "REF-LATE")
    assert captured.lead.attribution.referral_code == "REF-LATE"
    assert captured.lead.attribution.referrer_customer_id == ""  # nobody knows the code yet

    visit = new_envelope(
        producer="referral",
        event_type="share_visited",
        tenant_id=env.tenant,
        customer_id=captured.lead.customer_id,
        payload=rpb.ShareVisited(
            visit_id="v-late",
            code="REF-LATE",
            referrer_customer_id=referrer_id,
            channel_id=referral.channel_id,
            visitor_identities=[visitor],
        ),
    )
    subject = subject_for("referral", "share_visited")
    await nats_client.jetstream().publish(
        subject, visit.SerializeToString(), stream="REFERRAL", headers={"Nats-Msg-Id": visit.id}
    )

    async def credited() -> bool:
        lead = await env.stub.GetLead(
            pb.GetLeadRequest(tenant_id=env.tenant, lead_id=captured.lead.lead_id)
        )
        return lead.lead.attribution.referrer_customer_id == referrer_id

    await eventually(credited)


async def test_a_wecom_friend_add_from_conversion_is_a_friend_add_touch(
    env: Env, nats_client: Client
) -> None:
    campaign = await env.campaign()
    way = await env.channel(
        campaign.campaign_id,
        kind=pb.CHANNEL_KIND_WECOM_CONTACT_WAY,
        state="way-1",
        daily_cap_per_rep=50,
        owner_team="east",
    )
    assert way.daily_cap_per_rep == 50 and way.state == "way-1"
    friend = await env.identity_stub.ResolveCustomer(
        identity_pb2.ResolveCustomerRequest(
            tenant_id=env.tenant,
            identities=[
                c.Identity(kind=c.IDENTITY_KIND_WECOM_EXTERNAL_USERID, scope="ww1", value="wm-1")
            ],
        )
    )
    js = nats_client.jetstream()
    for payload in (
        cpb.OwnershipStarted(rep_id="r-1", channel_id=way.channel_id, state="way-1"),
        cpb.OwnershipStarted(rep_id="r-2", state="way-1"),  # found by the code's state
    ):
        payload.external_contact.CopyFrom(
            c.Identity(kind=c.IDENTITY_KIND_WECOM_EXTERNAL_USERID, scope="ww1", value="wm-1")
        )
        envelope = new_envelope(
            producer="conversion",
            event_type="ownership.started",
            tenant_id=env.tenant,
            customer_id=friend.customer.customer_id,
            payload=payload,
        )
        await js.publish(
            subject_for("conversion", "ownership.started"),
            envelope.SerializeToString(),
            stream="CONVERSION",
        )

    async def added() -> bool:
        return (await env.stats(way.channel_id)).friend_adds == 2

    await eventually(added)
    assert (await env.stats(way.channel_id)).unique_customers == 1


def _share_visit(channel_id: str, visitor_id: str, code: str, referrer_id: str) -> ShareVisit:
    """A visit of `code`'s share link (by a known visitor, or "" for an unknown one), as
    acquisition's visit flow builds it."""
    return ShareVisit(
        channel_id=channel_id,
        visitor=(),
        customer_id=visitor_id,
        code=code,
        referrer_customer_id=referrer_id,
        program_id="",
        share_id="",
        at=now(),
    )
