"""Broadcasts skip capped, unsubscribed, no-consent and quiet-hour recipients and say why; the
rest go out through the sender, one broadcast.sent each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
from nats.aio.client import Client

from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.events.v1 import retention_events_pb2 as ev
from closedloop.retention.v1 import retention_pb2 as pb
from loopkit.events import unpack
from loopkit.wechat.sender import SandboxSender
from loopkit_dev.testing import RunningService, eventually, read_events
from retention_helpers import (
    Stub,
    activity,
    customer,
    interacted,
    lead,
    publish,
    rpc_error,
    tenant,
    ts,
)


async def set_rules(stub: Stub, t: str, **values: object) -> None:
    await stub.SetLifecycleRules(
        pb.SetLifecycleRulesRequest(
            tenant_id=t, rules=pb.LifecycleRules(**values), fields=list(values)
        )
    )


async def get(stub: Stub, t: str, broadcast_id: str) -> pb.GetBroadcastResponse:
    return await stub.GetBroadcast(
        pb.GetBroadcastRequest(tenant_id=t, broadcast_id=broadcast_id, include_recipients=True)
    )


async def wait_done(stub: Stub, t: str, broadcast_id: str) -> pb.GetBroadcastResponse:
    async def done() -> bool:
        res = await get(stub, t, broadcast_id)
        return res.broadcast.status == pb.BROADCAST_STATUS_COMPLETED

    await eventually(done)
    return await get(stub, t, broadcast_id)


async def test_broadcast_skips_and_reports_why(
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    t = tenant()
    now = datetime.now(UTC)
    await set_rules(
        stub,
        t,
        cap_messages=1,
        utc_offset_minutes=0,
        quiet_start=(now + timedelta(hours=3)).strftime("%H:%M"),
        quiet_end=(now + timedelta(hours=5)).strftime("%H:%M"),
        send_rate_per_second=1000.0,
    )
    ok1, ok2, unsub, no_consent, capped = (customer() for _ in range(5))
    for cid in (ok1, ok2, unsub, capped):
        await lead(nats_client, t, cid, tags=("promo",))
    await lead(nats_client, t, no_consent, tags=("promo",), consent=False)
    await lead(nats_client, t, capped, tags=("early",))
    await interacted(nats_client, stub, t, ok1, ok2, unsub, no_consent, capped)
    await publish(
        nats_client,
        "acquisition",
        "touch.recorded",
        t,
        unsub,
        acq.TouchRecorded(touch_id="u", kind=acq.TOUCH_KIND_UNSUBSCRIBE, channel_id="ch-1"),
    )

    async def loaded() -> bool:
        a = await activity(stub, t, unsub)
        c = await stub.PreviewSegment(
            pb.PreviewSegmentRequest(tenant_id=t, expression="tag = 'promo'")
        )
        return a is not None and a.unsubscribed and c.count == 5

    await eventually(loaded)

    first = await stub.ScheduleBroadcast(
        pb.ScheduleBroadcastRequest(tenant_id=t, expression="tag = 'early'", template="hi early")
    )
    await wait_done(stub, t, first.broadcast.broadcast_id)

    seg = await stub.DefineSegment(
        pb.DefineSegmentRequest(tenant_id=t, name="promo", expression="tag = 'promo'")
    )
    scheduled = await stub.ScheduleBroadcast(
        pb.ScheduleBroadcastRequest(
            tenant_id=t,
            segment_id=seg.segment.segment_id,
            template="新品上市 {customer_id}",
            window_start=ts(now),
            window_end=ts(now + timedelta(hours=1)),
            idempotency_key="promo-1",
        )
    )
    b = scheduled.broadcast
    assert b.stats.recipients == 5 and b.stats.skipped == 3
    res = await wait_done(stub, t, b.broadcast_id)
    status = {r.customer_id: (r.status, r.reason) for r in res.recipients}
    assert status == {
        ok1: (pb.RECIPIENT_STATUS_SENT, ""),
        ok2: (pb.RECIPIENT_STATUS_SENT, ""),
        unsub: (pb.RECIPIENT_STATUS_SKIPPED, "unsubscribed"),
        no_consent: (pb.RECIPIENT_STATUS_SKIPPED, "no_consent"),
        capped: (pb.RECIPIENT_STATUS_SKIPPED, "frequency_cap"),
    }
    assert res.broadcast.stats.sent == 2
    assert dict(res.broadcast.stats.by_reason) == {
        "unsubscribed": 1,
        "no_consent": 1,
        "frequency_cap": 1,
    }
    # The same request again (a client retry) is the same broadcast.
    again = await stub.ScheduleBroadcast(
        pb.ScheduleBroadcastRequest(
            tenant_id=t, segment_id=seg.segment.segment_id, template="x", idempotency_key="promo-1"
        )
    )
    assert again.broadcast.broadcast_id == b.broadcast_id

    sender: SandboxSender = retention.runtime.parts["sender"]
    mine = [m for m, _ in sender.sent if m.params.get("broadcast_id") == b.broadcast_id]
    assert sorted(m.customer_id for m in mine) == sorted([ok1, ok2])
    assert all(m.recipient.value == f"o-{m.customer_id}" for m in mine)
    assert all(m.content == f"新品上市 {m.customer_id}" for m in mine)

    async def sent_events() -> list[ev.BroadcastSent]:
        envs = await read_events(nats_client, "RETENTION", tenant_id=t)
        return [
            unpack(e, ev.BroadcastSent)
            for e in envs
            if e.type == "broadcast.sent"
            and unpack(e, ev.BroadcastSent).broadcast_id == b.broadcast_id
        ]

    async def three() -> bool:
        return len(await sent_events()) == 2

    await eventually(three)

    # A window entirely inside quiet hours: everyone left is skipped for it.
    await set_rules(stub, t, cap_messages=10)
    quiet = await stub.ScheduleBroadcast(
        pb.ScheduleBroadcastRequest(
            tenant_id=t,
            expression="tag = 'promo' AND unsubscribed = false AND consent = true",
            template="late",
            window_start=ts(now + timedelta(hours=3, minutes=10)),
            window_end=ts(now + timedelta(hours=4, minutes=50)),
        )
    )
    assert quiet.broadcast.stats.recipients == 3
    assert dict(quiet.broadcast.stats.by_reason) == {"quiet_hours": 3}
    assert quiet.broadcast.status == pb.BROADCAST_STATUS_COMPLETED


async def test_a_broadcast_to_an_empty_segment_has_no_recipients(stub: Stub) -> None:
    t = tenant()
    res = await stub.ScheduleBroadcast(
        pb.ScheduleBroadcastRequest(tenant_id=t, expression="order_count > 5", template="hi")
    )
    assert res.broadcast.stats.recipients == 0
    assert res.broadcast.status == pb.BROADCAST_STATUS_COMPLETED
    now = datetime.now(UTC)
    for request, field in (
        (
            pb.ScheduleBroadcastRequest(
                tenant_id=t,
                expression="order_count > 5",
                template="hi",
                window_start=ts(now + timedelta(hours=2)),
                window_end=ts(now + timedelta(hours=1)),
            ),
            "window_end",
        ),
        (pb.ScheduleBroadcastRequest(tenant_id=t, expression="nope = 1", template="hi"), ""),
        (pb.ScheduleBroadcastRequest(tenant_id=t, expression="order_count > 1"), "template"),
    ):
        err = await rpc_error(stub.ScheduleBroadcast(request))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in (err.details() or "")
    missing = await rpc_error(
        stub.GetBroadcast(pb.GetBroadcastRequest(tenant_id=t, broadcast_id="nope"))
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND


async def test_a_refused_message_is_reported_as_failed(
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    t, ok, blocked = tenant(), customer(), customer()
    await set_rules(stub, t, quiet_start="00:00", quiet_end="00:00")
    await lead(nats_client, t, ok, tags=("x",))
    await lead(nats_client, t, blocked, tags=("x",), openid=f"blocked-{blocked}")
    await interacted(nats_client, stub, t, ok, blocked)
    sender: SandboxSender = retention.runtime.parts["sender"]
    sender.blocked.add(f"blocked-{blocked}")

    async def loaded() -> bool:
        res = await stub.PreviewSegment(
            pb.PreviewSegmentRequest(tenant_id=t, expression="tag = 'x'")
        )
        return res.count == 2

    await eventually(loaded)
    res = await stub.ScheduleBroadcast(
        pb.ScheduleBroadcastRequest(tenant_id=t, expression="tag = 'x'", template="hello")
    )
    done = await wait_done(stub, t, res.broadcast.broadcast_id)
    status = {r.customer_id: (r.status, r.reason) for r in done.recipients}
    assert status == {
        ok: (pb.RECIPIENT_STATUS_SENT, ""),
        blocked: (pb.RECIPIENT_STATUS_FAILED, "refused"),
    }
    assert done.broadcast.stats.failed == 1 and done.broadcast.stats.sent == 1


async def test_an_unsubscribe_after_planning_stops_the_scheduled_message(
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    """Consent is checked again when a message is due, not only when the broadcast is planned."""
    t, stays, leaves = tenant(), customer(), customer()
    await set_rules(stub, t, quiet_start="00:00", quiet_end="00:00", cap_messages=10)
    for cid in (stays, leaves):
        await lead(nats_client, t, cid, tags=("later",))
    await interacted(nats_client, stub, t, stays, leaves)

    async def loaded() -> bool:
        res = await stub.PreviewSegment(
            pb.PreviewSegmentRequest(tenant_id=t, expression="tag = 'later'")
        )
        return res.count == 2

    await eventually(loaded)
    # Planned for tomorrow: both are scheduled, nobody is messaged yet.
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    planned = await stub.ScheduleBroadcast(
        pb.ScheduleBroadcastRequest(
            tenant_id=t,
            expression="tag = 'later'",
            template="tomorrow's offer",
            window_start=ts(tomorrow),
            window_end=ts(tomorrow + timedelta(hours=1)),
        )
    )
    b = planned.broadcast
    assert b.stats.recipients == 2 and b.stats.skipped == 0

    await publish(
        nats_client,
        "acquisition",
        "touch.recorded",
        t,
        leaves,
        acq.TouchRecorded(touch_id="bye", kind=acq.TOUCH_KIND_UNSUBSCRIBE, channel_id="ch-1"),
    )

    async def unsubscribed() -> bool:
        a = await activity(stub, t, leaves)
        return a is not None and a.unsubscribed

    await eventually(unsubscribed)
    # Tomorrow comes: the messages fall due.
    from sqlalchemy import update

    from closedloop_retention.models import RecipientRow

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
        leaves: (pb.RECIPIENT_STATUS_SKIPPED, "unsubscribed"),
    }
    sender: SandboxSender = retention.runtime.parts["sender"]
    mine = [m for m, _ in sender.sent if m.params.get("broadcast_id") == b.broadcast_id]
    assert [m.customer_id for m in mine] == [stays]


async def test_outside_the_48_hour_window_the_template_goes_or_the_recipient_is_skipped(
    stub: Stub, nats_client: Client, retention: RunningService
) -> None:
    """WeChat refuses a customer-service text 48 h after the follower's last interaction: such
    recipients get the broadcast's template message, or without one are skipped, visibly."""
    t, recent, silent = tenant(), customer(), customer()
    await set_rules(stub, t, quiet_start="00:00", quiet_end="00:00", cap_messages=10)
    for cid in (recent, silent):
        await lead(nats_client, t, cid, tags=("w",))
    await interacted(nats_client, stub, t, recent)

    async def loaded() -> bool:
        res = await stub.PreviewSegment(
            pb.PreviewSegmentRequest(tenant_id=t, expression="tag = 'w'")
        )
        return res.count == 2

    await eventually(loaded)
    sender: SandboxSender = retention.runtime.parts["sender"]

    plain = await stub.ScheduleBroadcast(
        pb.ScheduleBroadcastRequest(tenant_id=t, expression="tag = 'w'", template="text only")
    )
    done = await wait_done(stub, t, plain.broadcast.broadcast_id)
    assert {r.customer_id: (r.status, r.reason) for r in done.recipients} == {
        recent: (pb.RECIPIENT_STATUS_SENT, ""),
        silent: (pb.RECIPIENT_STATUS_SKIPPED, "window_closed"),
    }
    assert dict(done.broadcast.stats.by_reason) == {"window_closed": 1}

    with_template = await stub.ScheduleBroadcast(
        pb.ScheduleBroadcastRequest(
            tenant_id=t,
            expression="tag = 'w'",
            template="Sale for {customer_id}",
            wechat_template_id="TPL-sale",
            wechat_template_data={"first": "Sale for {customer_id}", "remark": "see you"},
        )
    )
    b = with_template.broadcast
    assert b.wechat_template_id == "TPL-sale" and b.wechat_template_data["remark"] == "see you"
    done = await wait_done(stub, t, b.broadcast_id)
    assert {r.customer_id: r.status for r in done.recipients} == {
        recent: pb.RECIPIENT_STATUS_SENT,
        silent: pb.RECIPIENT_STATUS_SENT,
    }
    mine = {
        m.customer_id: m for m, _ in sender.sent if m.params.get("broadcast_id") == b.broadcast_id
    }
    assert mine[recent].kind == "mass" and "template_id" not in mine[recent].params
    assert mine[silent].kind == "template"
    assert mine[silent].params["template_id"] == "TPL-sale"
    assert mine[silent].params["data.first"] == f"Sale for {silent}"

    for bad, field in (
        ({"wechat_template_data": {"first": "x"}}, "wechat_template_data"),
        ({"wechat_template_id": "x" * 65}, "wechat_template_id"),
    ):
        err = await rpc_error(
            stub.ScheduleBroadcast(
                pb.ScheduleBroadcastRequest(
                    tenant_id=t, expression="tag = 'w'", template="x", **bad
                )
            )
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and field in (err.details() or "")
