"""The gateway's message.sent / message.failed show on the broadcast and win-back reports, per
customer; a redelivered outcome changes nothing."""

from __future__ import annotations

from nats.aio.client import Client
from test_broadcasts import get, set_rules, wait_done
from test_winback import offers_settled, valuable_customer

from closedloop.events.v1 import gateway_events_pb2 as gw
from closedloop.retention.v1 import retention_pb2 as pb
from loopkit.wechat.sender import SandboxSender
from loopkit_dev.testing import RunningService, eventually
from retention_helpers import Stub, customer, interacted, lead, publish, tenant


async def outcome(  # noqa: PLR0917 - the outcome's fields
    nc: Client, t: str, cid: str, key: str, send_id: str, errcode: int = 0
) -> None:
    if errcode:
        event: gw.MessageSent | gw.MessageFailed = gw.MessageFailed(
            send_id=send_id, idempotency_key=key, customer_id=cid, errcode=errcode
        )
        env = await publish(nc, "gateway", "message.failed", t, cid, event)
    else:
        event = gw.MessageSent(send_id=send_id, idempotency_key=key, customer_id=cid)
        env = await publish(nc, "gateway", "message.sent", t, cid, event)
    await publish(nc, "gateway", env.type, t, cid, event, env=env)  # a redelivery: no-op


async def test_broadcast_and_win_back_reports_show_delivery(
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    t, ok, refused = tenant(), customer(), customer()
    await set_rules(stub, t, quiet_start="00:00", quiet_end="00:00", cap_messages=10)
    for cid in (ok, refused):
        await lead(nats_client, t, cid, tags=("news",))
    await interacted(nats_client, stub, t, ok, refused)

    async def loaded() -> bool:
        res = await stub.PreviewSegment(
            pb.PreviewSegmentRequest(tenant_id=t, expression="tag = 'news' AND consent = true")
        )
        return res.count == 2

    await eventually(loaded)
    planned = await stub.ScheduleBroadcast(
        pb.ScheduleBroadcastRequest(tenant_id=t, expression="tag = 'news'", template="hi")
    )
    b = planned.broadcast.broadcast_id
    done = await wait_done(stub, t, b)
    assert {r.delivery for r in done.recipients} == {pb.DELIVERY_STATUS_PENDING}
    sent = {r.customer_id: r.message_id for r in done.recipients}
    await outcome(nats_client, t, ok, f"broadcast:{b}:{ok}", sent[ok])
    await outcome(nats_client, t, refused, f"broadcast:{b}:{refused}", sent[refused], 43004)
    # Someone else's send (a welcome message) is not ours: ignored.
    await outcome(nats_client, t, ok, "welcome:xyz", "send-x")

    async def reported() -> bool:
        res = await get(stub, t, b)
        return res.broadcast.stats.delivered == 1 and res.broadcast.stats.delivery_failed == 1

    await eventually(reported)
    res = await get(stub, t, b)
    per_customer = {r.customer_id: (r.delivery, r.delivery_errcode) for r in res.recipients}
    assert per_customer == {
        ok: (pb.DELIVERY_STATUS_DELIVERED, 0),
        refused: (pb.DELIVERY_STATUS_FAILED, 43004),
    }

    # A win-back offer's message.
    buyer = customer()
    await valuable_customer(nats_client, stub, t, buyer)
    await stub.SweepLifecycle(pb.SweepLifecycleRequest(tenant_id=t))
    [offer] = await offers_settled(stub, t, 1)
    assert offer.status == pb.WIN_BACK_STATUS_SENT
    sender: SandboxSender = retention.runtime.parts["sender"]
    [key] = [m.key for m, _ in sender.sent if m.customer_id == buyer]
    await outcome(nats_client, t, buyer, key, offer.message_id)

    async def offer_delivered() -> bool:
        res = await stub.ListWinBackOffers(
            pb.ListWinBackOffersRequest(tenant_id=t, customer_id=buyer)
        )
        return res.offers[0].delivery == pb.DELIVERY_STATUS_DELIVERED

    await eventually(offer_delivered)
