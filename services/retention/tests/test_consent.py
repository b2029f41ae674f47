"""Consent withdrawn through the RPC or the signed unsubscribe link stops a broadcast that was
already scheduled for that customer; a forged link unsubscribes nobody."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import httpx
import pytest
from nats.aio.client import Client
from sqlalchemy import update
from test_broadcasts import set_rules, wait_done

from closedloop.retention.v1 import retention_pb2 as pb
from closedloop_retention.models import RecipientRow
from loopkit.wechat.sender import SandboxSender
from loopkit_dev.testing import RunningService, eventually
from retention_helpers import Stub, activity, customer, interacted, lead, tenant, ts


async def test_withdrawn_consent_stops_a_scheduled_broadcast(
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    t, stays, by_rpc, by_link = tenant(), customer(), customer(), customer()
    wecom_only, wechat_off = customer(), customer()
    await set_rules(stub, t, quiet_start="00:00", quiet_end="00:00", cap_messages=10)
    for cid in (stays, by_rpc, by_link, wecom_only, wechat_off):
        await lead(nats_client, t, cid, tags=("promo",))
    await interacted(nats_client, stub, t, stays, by_rpc, by_link, wecom_only, wechat_off)

    async def loaded() -> bool:
        res = await stub.PreviewSegment(
            pb.PreviewSegmentRequest(tenant_id=t, expression="tag = 'promo' AND consent = true")
        )
        return res.count == 5

    await eventually(loaded)
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    planned = await stub.ScheduleBroadcast(
        pb.ScheduleBroadcastRequest(
            tenant_id=t,
            expression="tag = 'promo'",
            template="tomorrow's offer",
            window_start=ts(tomorrow),
            window_end=ts(tomorrow + timedelta(hours=1)),
        )
    )
    b = planned.broadcast
    assert b.stats.recipients == 5 and b.stats.skipped == 0

    # After planning: one withdraws by the RPC, one by the link, one from WeChat messages, one
    # only from WeCom messages (the broadcast goes to their openid: they still get it).
    await stub.WithdrawConsent(pb.WithdrawConsentRequest(tenant_id=t, customer_id=by_rpc))
    await stub.WithdrawConsent(
        pb.WithdrawConsentRequest(
            tenant_id=t, customer_id=wecom_only, channel="wecom_external_userid"
        )
    )
    await stub.WithdrawConsent(
        pb.WithdrawConsentRequest(tenant_id=t, customer_id=wechat_off, channel="wechat_openid")
    )
    link = await stub.GetUnsubscribeLink(
        pb.GetUnsubscribeLinkRequest(tenant_id=t, customer_id=by_link)
    )
    assert link.url.endswith(f"/u/{link.token}")
    async with httpx.AsyncClient(base_url=retention.http_url) as client:
        forged = link.token[:-4] + ("AAAA" if not link.token.endswith("AAAA") else "BBBB")
        assert (await client.post(f"/u/{forged}")).status_code == 404
        page = await client.get(f"/u/{link.token}")
        assert page.status_code == 200 and "<form" in page.text
        # Showing the page changes nothing: the customer still has consent.
        a = await activity(stub, t, by_link)
        assert a is not None and a.consent
        done = await client.post(f"/u/{link.token}")
        assert done.status_code == 200 and "unsubscribed" in done.text

    # Tomorrow comes: the messages fall due.
    async with retention.runtime.sessions() as session, session.begin():
        await session.execute(
            update(RecipientRow)
            .where(RecipientRow.broadcast_id == b.broadcast_id)
            .values(send_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    res = await wait_done(stub, t, b.broadcast_id)
    status = {r.customer_id: (r.status, r.reason) for r in res.recipients}
    assert status == {
        stays: (pb.RECIPIENT_STATUS_SENT, ""),
        wecom_only: (pb.RECIPIENT_STATUS_SENT, ""),
        by_rpc: (pb.RECIPIENT_STATUS_SKIPPED, "no_consent"),
        by_link: (pb.RECIPIENT_STATUS_SKIPPED, "no_consent"),
        wechat_off: (pb.RECIPIENT_STATUS_SKIPPED, "opted_out"),
    }
    sender: SandboxSender = retention.runtime.parts["sender"]
    mine = {m.customer_id for m, _ in sender.sent if m.params.get("broadcast_id") == b.broadcast_id}
    assert mine == {stays, wecom_only}


async def test_bad_consent_requests(stub: Stub) -> None:
    t = tenant()
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.WithdrawConsent(
            pb.WithdrawConsentRequest(tenant_id=t, customer_id=customer(), channel="sms")
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.WithdrawConsent(pb.WithdrawConsentRequest(tenant_id=t))
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
