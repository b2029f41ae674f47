"""Input that once answered 500 (and dropped the kept-alive connection) gets a 4xx with a reason:
absurd timestamps on correctly signed callbacks, legacy encodings, deeply nested JSON, and
identity kinds no version of the schema has."""

from __future__ import annotations

import grpc
import pytest

from acquisition_helpers import Env, event_xml, form, plain_post, safe_post, signed_query
from closedloop.acquisition.v1 import acquisition_pb2 as pb
from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1 import acquisition_events_pb2 as ev

HUGE_TIMESTAMP = 10**300  # correctly signed, but no float can hold it


async def test_signed_callbacks_with_an_absurd_timestamp_are_refused(env: Env) -> None:
    async with env.http() as http:
        verify = await http.get(
            env.callback(False), params={**signed_query(timestamp=HUGE_TIMESTAMP), "echostr": "e"}
        )
        query, body = plain_post(event_xml("o-ts", "subscribe"), timestamp=HUGE_TIMESTAMP)
        plain = await http.post(env.callback(False), params=query, content=body)
        query, body = safe_post(
            event_xml("o-ts", "subscribe"), env.app_id, timestamp=HUGE_TIMESTAMP
        )
        safe = await http.post(env.callback(), params=query, content=body)
    for answer in (verify, plain, safe):
        assert answer.status_code == 403, answer.text
        assert "timestamp" in answer.json()["error"]


async def test_a_callback_declaring_a_legacy_encoding_is_refused(env: Env) -> None:
    gbk = '<?xml version="1.0" encoding="gbk"?>'
    async with env.http() as http:
        query, body = plain_post(gbk + event_xml("o-gbk", "subscribe"))
        plain = await http.post(env.callback(False), params=query, content=body)
        # In safe mode the outer envelope is read before anything is verified.
        query, body = safe_post(event_xml("o-gbk", "subscribe"), env.app_id)
        safe = await http.post(env.callback(), params=query, content=gbk.encode() + body)
    for answer in (plain, safe):
        assert answer.status_code == 400, answer.text
        assert "encoding" in answer.json()["error"]


async def test_a_form_nested_thousands_of_levels_deep_is_refused(env: Env) -> None:
    campaign = await env.campaign()
    page = await env.page(campaign.campaign_id)
    nested = b'{"values": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    async with env.http() as http:
        deep = await http.post(f"/v1/forms/{page.page_id}/submissions", content=nested)
        # The same connection still serves the next submission.
        fine = await http.post(f"/v1/forms/{page.page_id}/submissions", json={"values": form()})
    assert deep.status_code == 400, deep.text
    assert deep.json() == {"error": "JSON nested deeper than 32 levels", "field": "body"}
    assert fine.status_code == 201, fine.text


@pytest.mark.parametrize("kind", [99, -1])
async def test_an_unknown_identity_kind_is_invalid_argument(env: Env, kind: int) -> None:
    campaign = await env.campaign()
    page = await env.page(campaign.campaign_id)
    channel = await env.channel(campaign.campaign_id, kind=pb.CHANNEL_KIND_LINK)
    unknown = [c.Identity(kind=kind, value="x")]  # type: ignore[arg-type]
    calls = [
        env.stub.CaptureLead(
            pb.CaptureLeadRequest(
                tenant_id=env.tenant, page_id=page.page_id, values=form(), identities=unknown
            )
        ),
        env.stub.RecordTouch(
            pb.RecordTouchRequest(
                tenant_id=env.tenant,
                kind=ev.TOUCH_KIND_CLICK,
                channel_id=channel.channel_id,
                identities=unknown,
            )
        ),
        env.stub.JoinFission(
            pb.JoinFissionRequest(
                tenant_id=env.tenant, campaign_id=campaign.campaign_id, identities=unknown
            )
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
        assert "unknown identity kind" in (caught.value.details() or "")
        trailers = dict(caught.value.trailing_metadata() or ())
        assert trailers.get("closedloop-field") == "identities[0].kind"
