"""A client retrying a CaptureLead that committed but timed out (or a browser re-posting a form
whose answer it lost) gets the first answer, not a re-submission."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from nats.aio.client import Client

from acquisition_helpers import Env, form
from closedloop.acquisition.v1 import acquisition_pb2 as pb
from loopkit_dev.testing import eventually, read_events


async def _event_types(nc: Client, env: Env) -> list[str]:
    found = await read_events(
        nc, "ACQUISITION", "closedloop.acquisition.lead.>", tenant_id=env.tenant
    )
    return sorted(e.type for e in found)


async def _wait_for_events(nc: Client, env: Env, n: int) -> list[str]:
    """The tenant's lead events once at least n are out (the relay publishes after the commit);
    every call of the test has committed by then, so a spurious event would be among them."""

    async def enough() -> bool:
        return len(await _event_types(nc, env)) >= n

    await eventually(enough)
    return await _event_types(nc, env)


async def test_a_retried_capture_with_the_same_key_is_not_a_resubmission(
    env: Env, nats_client: Client
) -> None:
    campaign = await env.campaign()
    page = await env.page(campaign.campaign_id)
    key = str(uuid.uuid4())

    def call(request_id: str) -> pb.CaptureLeadRequest:
        return pb.CaptureLeadRequest(
            tenant_id=env.tenant,
            page_id=page.page_id,
            values=form(phone_number="13700137000"),
            request_id=request_id,
        )

    first = await env.stub.CaptureLead(call(key))
    # The retries race each other as well as the first call.
    retries = await asyncio.gather(*(env.stub.CaptureLead(call(key)) for _ in range(4)))
    for again in retries:
        assert again.lead.lead_id == first.lead.lead_id
        assert again.repeat is False and again.lead.submissions == 1
    stored = await env.stub.GetLead(
        pb.GetLeadRequest(tenant_id=env.tenant, lead_id=first.lead.lead_id)
    )
    assert stored.lead.submissions == 1

    # A new key is a new submission by the same person: that one is a re-submission.
    other = await env.stub.CaptureLead(call(str(uuid.uuid4())))
    assert (other.lead.lead_id, other.repeat, other.lead.submissions) == (
        first.lead.lead_id,
        True,
        2,
    )
    # Exactly one capture and the one real re-submission went out as events.
    types = await _wait_for_events(nats_client, env, 2)
    assert types == ["lead.captured", "lead.resubmitted"]


async def test_a_key_names_one_submission_only(env: Env) -> None:
    campaign = await env.campaign()
    page, other_page = await env.page(campaign.campaign_id), await env.page(campaign.campaign_id)
    key = str(uuid.uuid4())
    await env.stub.CaptureLead(
        pb.CaptureLeadRequest(
            tenant_id=env.tenant, page_id=page.page_id, values=form(), request_id=key
        )
    )
    for request in (
        pb.CaptureLeadRequest(
            tenant_id=env.tenant, page_id=other_page.page_id, values=form(), request_id=key
        ),
        pb.CaptureLeadRequest(
            tenant_id=env.tenant, page_id=page.page_id, values=form(), request_id="k" * 129
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await env.stub.CaptureLead(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert dict(caught.value.trailing_metadata() or ()).get("closedloop-field") == "request_id"


async def test_a_form_posted_again_with_its_idempotency_key_gets_the_first_answer(
    env: Env, nats_client: Client
) -> None:
    campaign = await env.campaign()
    page = await env.page(campaign.campaign_id)
    url = f"/v1/forms/{page.page_id}/submissions"
    body = {"values": form(phone_number="13600136000")}
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    async with env.http() as http:
        answers = [await http.post(url, json=body, headers=headers) for _ in range(3)]
        fresh = await http.post(url, json=body)  # no key: an ordinary re-submission
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert len({a.json()["lead_id"] for a in answers}) == 1
    assert fresh.status_code == 200 and fresh.json()["repeat"] is True
    types = await _wait_for_events(nats_client, env, 2)
    assert types == ["lead.captured", "lead.resubmitted"]
