"""identity's customer.forgotten erases what the gateway holds on the person (openids, external
ids, message text); customer.merged moves the merged customer's sends and window to the survivor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from nats.aio.client import Client
from sqlalchemy import select

from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.events.v1 import identity_events_pb2 as idev
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop.gateway.v1 import gateway_pb2 as pb
from closedloop_gateway.models import Base, SendRow
from closedloop_gateway.sends.model import QUEUED
from gateway_helpers import TENANT, WINDOW_APP, unique
from loopkit.events import new_envelope, subject_for
from loopkit.natsio import ensure_service_streams
from loopkit_dev.testing import RunningService, eventually, replay_event

# The kit's tables: the outbox is emptied by retention (loopkit.outbox), the inbox holds ids only.
_KIT = {"outbox", "inbox"}


async def _publish(
    nc: Client, producer: str, event_type: str, customer_id: str, payload: Any
) -> Envelope:
    js = nc.jetstream()
    await ensure_service_streams(js, producer, replicas=1)
    env = new_envelope(
        producer=producer,
        event_type=event_type,
        tenant_id=TENANT,
        customer_id=customer_id,
        payload=payload,
        occurred_at=datetime.now(UTC),
    )
    await js.publish(
        subject_for(producer, event_type), env.SerializeToString(), headers={"Nats-Msg-Id": env.id}
    )
    return env


async def _subscribed(nc: Client, customer: str, openid: str) -> None:
    touch = acq.TouchRecorded(
        touch_id=unique("t"),
        kind=acq.TOUCH_KIND_SUBSCRIBE,
        identities=[c.Identity(kind=c.IDENTITY_KIND_WECHAT_OPENID, scope=WINDOW_APP, value=openid)],
    )
    await _publish(nc, "acquisition", "touch.recorded", customer, touch)


async def _send_text(stub: Any, key: str, customer: str, openid: str, text: str) -> None:
    request = pb.SendMessageRequest(
        tenant_id=TENANT,
        idempotency_key=key,
        customer_id=customer,
        official_account_text=pb.OfficialAccountText(app_id=WINDOW_APP, openid=openid, text=text),
    )

    async def accepted() -> bool:  # once the touch has opened the 48-hour window
        try:
            await stub.SendMessage(request)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION
            return False
        return True

    await eventually(accepted)

    async def sent() -> bool:
        got = await stub.GetSend(pb.GetSendRequest(tenant_id=TENANT, idempotency_key=key))
        return bool(got.send.status == pb.SEND_STATUS_SENT)

    await eventually(sent)


async def _tables_holding(gateway: RunningService, *needles: str) -> set[str]:
    """The gateway's own tables with a row mentioning any needle."""
    found = set()
    async with gateway.runtime.sessions() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in _KIT:
                continue
            for row in (await session.execute(select(table))).all():
                if any(n in repr(tuple(row)) for n in needles):
                    found.add(table.name)
    return found


async def test_forget_erases_openids_and_message_text_from_every_gateway_table(
    gateway: RunningService, stub: Any, nats_client: Client
) -> None:
    customer, other = unique("c"), unique("c")
    openid, second_openid, others_openid = unique("o"), unique("o"), unique("o")
    text = f"Your parcel {unique('p')} is on its way"
    await _subscribed(nats_client, customer, openid)
    await _subscribed(nats_client, customer, second_openid)  # never sent to
    await _subscribed(nats_client, other, others_openid)
    key = unique("k")
    await _send_text(stub, key, customer, openid, text)
    await _send_text(stub, unique("k"), other, others_openid, "Hello")
    assert await _tables_holding(gateway, openid, second_openid, text) == {"sends", "interactions"}

    forgotten = idev.CustomerForgotten(customer_id=customer)
    await _publish(nats_client, "identity", "customer.forgotten", customer, forgotten)

    async def erased() -> bool:
        return not await _tables_holding(gateway, openid, second_openid, text)

    await eventually(erased)
    # The send stays, as the record that something went out, without its message.
    got = await stub.GetSend(pb.GetSendRequest(tenant_id=TENANT, idempotency_key=key))
    assert got.send.status == pb.SEND_STATUS_SENT
    # Another customer keeps everything.
    assert await _tables_holding(gateway, others_openid) == {"sends", "interactions"}


async def test_a_send_still_waiting_when_its_customer_is_forgotten_is_failed_not_sent(
    gateway: RunningService, stub: Any, nats_client: Client
) -> None:
    customer, key, openid = unique("c"), unique("k"), unique("o")
    later = datetime.now(UTC) + timedelta(days=1)  # waiting (as after a quota pause)
    async with gateway.runtime.sessions() as session, session.begin():
        session.add(
            SendRow(
                id=unique("s")[:26],
                tenant_id=TENANT,
                idempotency_key=key,
                customer_id=customer,
                kind="official_account_template",
                account_id=WINDOW_APP,
                payload={"openid": openid, "template_id": "tpl", "data": {"first": "Hello"}},
                fingerprint="f",
                status=QUEUED,
                errcode=0,
                errmsg="",
                attempts=0,
                wechat_msgid="",
                lease_holder="",
                next_attempt_at=later,
                created_at=datetime.now(UTC),
            )
        )
    forgotten = idev.CustomerForgotten(customer_id=customer)
    await _publish(nats_client, "identity", "customer.forgotten", customer, forgotten)

    async def failed() -> bool:
        got = await stub.GetSend(pb.GetSendRequest(tenant_id=TENANT, idempotency_key=key))
        return bool(got.send.status == pb.SEND_STATUS_FAILED)

    await eventually(failed)
    got = await stub.GetSend(pb.GetSendRequest(tenant_id=TENANT, idempotency_key=key))
    assert got.send.errmsg == "customer forgotten"
    assert not await _tables_holding(gateway, openid)


async def test_merge_gives_the_survivor_the_merged_customers_window_and_sends(
    gateway: RunningService, stub: Any, nats_client: Client
) -> None:
    survivor, merged, openid = unique("c"), unique("c"), unique("o")
    await _subscribed(nats_client, merged, openid)
    key = unique("k")
    await _send_text(stub, key, merged, openid, "Hi")
    message = acq.InteractionRecorded(interaction_id=unique("i"), kind="text", app_id=WINDOW_APP)
    await _publish(nats_client, "acquisition", "interaction.recorded", merged, message)
    # The survivor never interacted: a text to them (at an openid without a window) is refused.
    fresh = pb.OfficialAccountText(app_id=WINDOW_APP, openid=unique("o"), text="Hello")
    request = pb.SendMessageRequest(
        tenant_id=TENANT,
        idempotency_key=unique("k"),
        customer_id=survivor,
        official_account_text=fresh,
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.SendMessage(request)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    event = idev.CustomerMerged(survivor_id=survivor, merged_id=merged)
    await _publish(nats_client, "identity", "customer.merged", survivor, event)

    async def survivor_has_the_window() -> bool:
        try:
            await stub.SendMessage(request)
        except grpc.aio.AioRpcError:
            return False
        return True

    await eventually(survivor_has_the_window)
    got = await stub.GetSend(pb.GetSendRequest(tenant_id=TENANT, idempotency_key=key))
    assert got.send.customer_id == survivor


@pytest.mark.parametrize("survivor_had_a_window", [False, True])
async def test_unmerge_gives_the_window_and_sends_back(
    gateway: RunningService, stub: Any, nats_client: Client, survivor_had_a_window: bool
) -> None:
    survivor, merged, openid = unique("c"), unique("c"), unique("o")
    await _subscribed(nats_client, merged, openid)
    if survivor_had_a_window:  # then the merged one's window row is folded into the survivor's
        await _subscribed(nats_client, survivor, unique("o"))
    key = unique("k")
    await _send_text(stub, key, merged, openid, "Hi")

    def text_to(customer: str) -> pb.SendMessageRequest:
        fresh = pb.OfficialAccountText(app_id=WINDOW_APP, openid=unique("o"), text="Hello")
        return pb.SendMessageRequest(
            tenant_id=TENANT,
            idempotency_key=unique("k"),
            customer_id=customer,
            official_account_text=fresh,
        )

    async def window_open(customer: str) -> bool:
        try:
            await stub.SendMessage(text_to(customer))
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION
            return False
        return True

    if survivor_had_a_window:

        async def survivor_window() -> bool:
            return await window_open(survivor)

        await eventually(survivor_window)
    merge_id = unique("m")
    merge = idev.CustomerMerged(survivor_id=survivor, merged_id=merged, merge_id=merge_id)
    await _publish(nats_client, "identity", "customer.merged", survivor, merge)

    async def merged_in() -> bool:
        got = await stub.GetSend(pb.GetSendRequest(tenant_id=TENANT, idempotency_key=key))
        return got.send.customer_id == survivor and await window_open(survivor)

    await eventually(merged_in)
    unmerge = idev.CustomerUnmerged(
        restored_id=merged, survivor_id=survivor, merged_into_id=survivor, merge_id=merge_id
    )
    unmerged = await _publish(nats_client, "identity", "customer.unmerged", merged, unmerge)

    async def given_back() -> bool:
        got = await stub.GetSend(pb.GetSendRequest(tenant_id=TENANT, idempotency_key=key))
        return bool(got.send.customer_id == merged)

    await eventually(given_back)
    assert await window_open(merged)
    assert await window_open(survivor) is survivor_had_a_window
    # The same customer.unmerged delivered again changes nothing.
    await replay_event(nats_client, unmerged, durable="gateway-identity")
    assert await window_open(merged)
    assert await window_open(survivor) is survivor_had_a_window
