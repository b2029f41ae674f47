"""Follow-ups by hand and the chat archive import (batch, de-duplicated, bad records reported)."""

from __future__ import annotations

import time

import grpc
import httpx
import pytest

from closedloop.conversion.v1 import conversion_pb2 as pb
from closedloop.events.v1 import conversion_events_pb2 as ev
from conversion_helpers import (
    contact_change,
    events,
    lead_envelope,
    make_rep,
    post_callback,
    publish,
)
from loopkit.events import unpack
from loopkit_dev.testing import eventually


async def test_log_follow_up_publishes_and_stamps_first_response(stub, tenant, nats_client):
    rep = await make_rep(stub, tenant, "caller")
    env = lead_envelope(tenant, "cust-f")
    await publish(nats_client, env)

    async def assigned():
        listed = await stub.ListLeads(pb.ListLeadsRequest(tenant_id=tenant, rep_id=rep.rep_id))
        return listed.leads

    await eventually(assigned)
    logged = await stub.LogFollowUp(
        pb.LogFollowUpRequest(
            tenant_id=tenant,
            customer_id="cust-f",
            rep_id=rep.rep_id,
            kind=ev.FOLLOW_UP_KIND_CALL,
            summary="called, interested in the spring course",
        )
    )
    [lead] = await assigned()
    assert logged.follow_up.lead_id == lead.lead_id
    assert lead.HasField("first_follow_up_at")
    await stub.LogFollowUp(
        pb.LogFollowUpRequest(
            tenant_id=tenant,
            customer_id="cust-f",
            rep_id=rep.rep_id,
            kind=ev.FOLLOW_UP_KIND_MOMENTS_LIKE,
        )
    )

    async def logged_events():
        return await events(nats_client, tenant, "followup.logged")

    await eventually(lambda: _at_least(logged_events, 2))
    kinds = [unpack(e, ev.FollowUpLogged).kind for e in await logged_events()]
    assert kinds == [ev.FOLLOW_UP_KIND_CALL, ev.FOLLOW_UP_KIND_MOMENTS_LIKE]
    report = await stub.GetRepReport(pb.GetRepReportRequest(tenant_id=tenant, rep_id=rep.rep_id))
    assert dict(report.reps[0].follow_ups_by_kind) == {"call": 1, "moments_like": 1}
    # Mean first response: assignment to the first follow-up, computed in SQL on both databases.
    waited = lead.first_follow_up_at.ToDatetime() - lead.assigned_at.ToDatetime()
    assert report.reps[0].leads_assigned == 1
    assert abs(report.reps[0].first_response_seconds - waited.total_seconds()) < 0.01
    assert report.reps[0].first_response_seconds > 0

    for bad, field in (
        (pb.LogFollowUpRequest(tenant_id=tenant, customer_id="c", rep_id=rep.rep_id), "kind"),
        (
            pb.LogFollowUpRequest(
                tenant_id=tenant, customer_id="c", rep_id="nobody", kind=ev.FOLLOW_UP_KIND_NOTE
            ),
            "rep_id",
        ),
        (
            pb.LogFollowUpRequest(tenant_id=tenant, rep_id=rep.rep_id, kind=ev.FOLLOW_UP_KIND_NOTE),
            "customer_id",
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.LogFollowUp(bad)
        assert err.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
        assert dict(err.value.trailing_metadata()).get("closedloop-field") == field


async def test_chat_archive_stores_good_records_once_and_reports_bad_ones(
    stub, conversion, tenant, nats_client
):
    rep = await make_rep(stub, tenant, "chatter")
    answer = await post_callback(
        conversion.http_url, contact_change("add_external_contact", "chatter", "wm-chat")
    )
    assert answer.status_code == 200
    now = int(time.time()) - 60
    messages: list[object] = []
    for i in range(18):
        outbound = i % 2 == 0
        messages.append(
            {
                "msg_id": f"m-{i}",
                "sender": "chatter" if outbound else "wm-chat",
                "receiver": "wm-chat" if outbound else "chatter",
                "time": now + i,
                "type": "text",
                "text": f"message {i}",
            }
        )
    messages.insert(
        3,
        {
            "msg_id": "m-bad",
            "sender": "chatter",
            "receiver": "wm-chat",
            "type": "text",
            "text": "x",
        },
    )
    messages.insert(11, "not an object")
    url = f"/v1/tenants/{tenant}/chat-archive"
    async with httpx.AsyncClient(
        base_url=conversion.http_url, headers=conversion.headers()
    ) as client:
        first = await client.post(url, json={"messages": messages})
        again = await client.post(url, json={"messages": messages[:5]})
        broken = await client.post(url, content=b"{not json")
    assert first.status_code == 200, first.text
    result = first.json()
    assert (result["stored"], result["duplicates"]) == (18, 0)
    assert [(r["index"], r["field"]) for r in result["rejected"]] == [(3, "time"), (11, "message")]
    rejected_again = [{"index": 3, "reason": result["rejected"][0]["reason"], "field": "time"}]
    assert again.json() == {"stored": 0, "duplicates": 4, "rejected": rejected_again}
    assert broken.status_code == 400 and broken.json()["field"] == "body"

    async def chats():
        return await events(nats_client, tenant, "followup.logged")

    await eventually(lambda: _at_least(chats, 18))
    payloads = [unpack(e, ev.FollowUpLogged) for e in await chats()]
    assert len(payloads) == 18
    assert sum(p.inbound for p in payloads) == 9
    assert {p.rep_id for p in payloads} == {rep.rep_id}


async def _at_least(fetch, n: int) -> bool:
    return len(await fetch()) >= n
