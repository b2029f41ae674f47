"""Sends as durable commands: stored under their idempotency key, executed once, retried on
transient errors, paused (visibly) on over-limit answers, refused outside the 48-hour window,
and published as message.sent / message.failed."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any, get_args

import grpc
import httpx
import pytest
from nats.aio.client import Client
from sqlalchemy import update

from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.events.v1 import gateway_events_pb2 as ev
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop.gateway.v1 import gateway_pb2 as pb
from closedloop_gateway.models import SendRow
from closedloop_gateway.quotas.limits import CHINA
from closedloop_gateway.sends.model import API_OF, KIND_PB, Kind
from gateway_helpers import APP, CORP, QUOTA_APP, TENANT, WINDOW_APP, Emulator, unique
from loopkit.events import new_envelope, subject_for, unpack
from loopkit.natsio import ensure_service_streams
from loopkit_dev.testing import RunningService, answer_of, eventually, read_events


async def _send(stub: Any, key: str, **message: Any) -> pb.Send:
    answer = await stub.SendMessage(
        pb.SendMessageRequest(tenant_id=TENANT, idempotency_key=key, **message)
    )
    return answer.send


async def _settled(stub: Any, key: str, *statuses: int) -> pb.Send:
    wanted = statuses or (pb.SEND_STATUS_SENT, pb.SEND_STATUS_FAILED, pb.SEND_STATUS_PAUSED)
    found: list[pb.Send] = []

    async def check() -> bool:
        answer = await stub.GetSend(pb.GetSendRequest(tenant_id=TENANT, idempotency_key=key))
        found.append(answer.send)
        return answer.send.status in wanted

    await eventually(check, timeout_s=20)
    return found[-1]


def _template(openid: str, app_id: str = APP) -> dict[str, Any]:
    return {
        "official_account_template": pb.OfficialAccountTemplate(
            app_id=app_id,
            openid=openid,
            template_id="tpl-order-shipped",
            url="https://shop.example.com/o/1",
            data={"first": "Your order shipped", "remark": "Thanks"},
        )
    }


async def _events(nc: Client, key: str) -> list[Envelope]:
    found = []
    for env in await read_events(nc, "GATEWAY", tenant_id=TENANT):
        payload = (
            unpack(env, ev.MessageSent)
            if env.type == "message.sent"
            else unpack(env, ev.MessageFailed)
        )
        if payload.idempotency_key == key:
            found.append(env)
    return found


@pytest.mark.parametrize("gateway", ["sqlite"], indirect=True)
async def test_the_read_calls_answer_beside_an_open_write_on_sqlite(
    gateway: RunningService, stub: Any
) -> None:
    """GetSend and GetQuotaStatus read in a deferred transaction (`loopkit.db.transact_read`):
    on SQLite they answer while another connection holds the write lock. They began IMMEDIATE,
    so each queued behind the writer (up to the 30 s busy timeout, then again on each retry)."""
    key = unique("k")
    await _send(stub, key, customer_id="cust-r", **_template(unique("o")))
    sent = await _settled(stub, key)
    async with gateway.runtime.sessions() as writer, writer.begin():
        touched = update(SendRow).where(SendRow.id == sent.send_id)
        await writer.execute(touched.values(attempts=99))  # the write lock, held to the end
        got = await answer_of(
            stub.GetSend(pb.GetSendRequest(tenant_id=TENANT, send_id=sent.send_id))
        )
        assert got.send.attempts == sent.attempts  # what was committed
        quota = pb.GetQuotaStatusRequest(tenant_id=TENANT, app_id=APP)
        assert (await answer_of(stub.GetQuotaStatus(quota))).apis


async def test_template_send_is_executed_once_per_key(
    stub: Any, wechat: Emulator, nats_client: Client
) -> None:
    key, openid = unique("k"), unique("o")
    first = await _send(stub, key, customer_id="cust-1", **_template(openid))
    assert first.status in (pb.SEND_STATUS_QUEUED, pb.SEND_STATUS_SENT)
    sent = await _settled(stub, key)
    assert sent.status == pb.SEND_STATUS_SENT and sent.wechat_msgid and sent.attempts == 1
    assert sent.HasField("sent_at") and sent.account_id == APP
    again = await stub.SendMessage(
        pb.SendMessageRequest(
            tenant_id=TENANT, idempotency_key=key, customer_id="cust-1", **_template(openid)
        )
    )
    assert not again.created and again.send.send_id == first.send_id
    with pytest.raises(grpc.aio.AioRpcError) as other:
        await _send(stub, key, **_template(unique("o")))
    assert other.value.code() == grpc.StatusCode.ALREADY_EXISTS
    calls = [x for x in wechat.calls("message/template/send", APP) if x["body"]["touser"] == openid]
    assert len(calls) == 1
    assert calls[0]["body"]["data"]["first"] == {"value": "Your order shipped"}

    async def published() -> list[Envelope]:
        return await _events(nats_client, key)

    await eventually(published)
    (env,) = await published()
    assert env.type == "message.sent" and env.customer_id == "cust-1"
    event = unpack(env, ev.MessageSent)
    assert event.send_id == first.send_id and event.wechat_msgid == sent.wechat_msgid
    assert event.kind == ev.MESSAGE_KIND_OFFICIAL_ACCOUNT_TEMPLATE and event.account_id == APP


async def test_a_batch_of_sends_is_stored_item_by_item(stub: Any, wechat: Emulator) -> None:
    """SendMessages: new items are stored and sent once, a known key answers its send, and an
    item SendMessage would refuse is refused in its own result without holding up the others."""
    known, fresh, reused, openids = (
        unique("k"),
        unique("k"),
        unique("k"),
        [unique("o") for _ in "ab"],
    )
    first = await _send(stub, known, **_template(openids[0]))
    await _send(stub, reused, **_template(unique("o")))

    def item(key: str, **message: Any) -> pb.SendMessageRequest:
        return pb.SendMessageRequest(idempotency_key=key, **message)

    answer = await stub.SendMessages(
        pb.SendMessagesRequest(
            tenant_id=TENANT,
            sends=[
                item(known, **_template(openids[0])),  # a repeat: the first send
                item(fresh, **_template(openids[1])),  # new
                item(reused, **_template(unique("o"))),  # the key of another message
                item(unique("k"), **_template("")),  # no openid
                item(fresh, **_template(openids[1])),  # new, twice in the batch
            ],
        )
    )
    r = answer.results
    assert [x.error_code for x in r] == [
        0,
        0,
        grpc.StatusCode.ALREADY_EXISTS.value[0],
        grpc.StatusCode.INVALID_ARGUMENT.value[0],
        0,
    ]
    assert "openid" in r[3].error_message
    assert not r[0].created and r[0].send.send_id == first.send_id
    assert r[1].created and not r[4].created and r[4].send.send_id == r[1].send.send_id
    assert (await _settled(stub, fresh)).status == pb.SEND_STATUS_SENT
    assert (await _settled(stub, known)).status == pb.SEND_STATUS_SENT
    for openid in openids:
        calls = wechat.calls("message/template/send", APP)
        assert len([x for x in calls if x["body"]["touser"] == openid]) == 1
    with pytest.raises(grpc.aio.AioRpcError) as empty:
        await stub.SendMessages(pb.SendMessagesRequest(tenant_id=TENANT))
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_wecom_welcome_and_broadcast(stub: Any, wechat: Emulator) -> None:
    code, key = unique("wc"), unique("k")
    await _send(
        stub, key, wecom_welcome=pb.WecomWelcome(welcome_code=code, text="Welcome, I am Li")
    )
    assert (await _settled(stub, key)).status == pb.SEND_STATUS_SENT
    (call,) = [
        x
        for x in wechat.calls("externalcontact/send_welcome_msg", CORP)
        if x["body"]["welcome_code"] == code
    ]
    assert call["body"]["text"] == {"content": "Welcome, I am Li"}
    # The same welcome_code under a new key: WeCom refuses it, and that is final.
    key2 = unique("k")
    await _send(stub, key2, wecom_welcome=pb.WecomWelcome(welcome_code=code, text="again"))
    failed = await _settled(stub, key2)
    assert failed.status == pb.SEND_STATUS_FAILED and failed.errcode == 41051
    key3, sender = unique("k"), unique("rep")
    await _send(
        stub,
        key3,
        wecom_msg_template=pb.WecomMsgTemplate(
            sender_userid=sender, external_userids=["wm-a", "wm-b"], text="Spring offer"
        ),
    )
    broadcast = await _settled(stub, key3)
    assert broadcast.status == pb.SEND_STATUS_SENT and broadcast.wechat_msgid
    (call,) = [
        x
        for x in wechat.calls("externalcontact/add_msg_template", CORP)
        if x["body"]["sender"] == sender
    ]
    assert call["body"]["external_userid"] == ["wm-a", "wm-b"]


async def test_busy_answers_are_retried_with_back_off(stub: Any, wechat: Emulator) -> None:
    key, openid = unique("k"), unique("o")
    wechat.fail("message/template/send", -1, count=2, app_id=APP)
    await _send(stub, key, **_template(openid))
    sent = await _settled(stub, key, pb.SEND_STATUS_SENT, pb.SEND_STATUS_FAILED)
    assert sent.status == pb.SEND_STATUS_SENT and sent.attempts == 3
    errcodes = [x["errcode"] for x in wechat.calls("message/template/send", APP)][-3:]
    assert errcodes == [-1, -1, 0]


async def test_a_permanent_error_fails_the_send_and_is_published(
    stub: Any, wechat: Emulator, nats_client: Client
) -> None:
    key = unique("k")
    wechat.fail("message/template/send", 43004, app_id=APP)
    await _send(stub, key, customer_id="cust-gone", **_template(unique("o")))
    failed = await _settled(stub, key)
    assert failed.status == pb.SEND_STATUS_FAILED and failed.errcode == 43004
    assert "unsubscribed" in failed.errmsg

    async def published() -> list[Envelope]:
        return await _events(nats_client, key)

    await eventually(published)
    (env,) = await published()
    event = unpack(env, ev.MessageFailed)
    assert env.type == "message.failed" and event.errcode == 43004


async def test_daily_limit_pauses_the_api_visibly_and_drops_nothing(
    stub: Any, gateway: RunningService, wechat: Emulator, nats_client: Client
) -> None:
    wechat.fail("message/template/send", 45009, app_id=QUOTA_APP)
    key = unique("k")
    await _send(stub, key, **_template(unique("o"), QUOTA_APP))
    paused = await _settled(stub, key)
    assert paused.status == pb.SEND_STATUS_PAUSED and paused.errcode == 45009
    # Paused until the next WeChat day (midnight China time), not dropped.
    resume = paused.next_attempt_at.ToDatetime(tzinfo=UTC)
    assert resume > datetime.now(UTC)
    assert resume.astimezone(CHINA).time() == time(0, 0)
    quota = await stub.GetQuotaStatus(pb.GetQuotaStatusRequest(tenant_id=TENANT, app_id=QUOTA_APP))
    by_api = {q.api: q for q in quota.apis}
    template = by_api["message/template/send"]
    assert template.paused_errcode == 45009 and template.HasField("paused_until")
    assert template.daily_limit == 100_000 and template.used_today >= 1
    # Later sends through the paused API wait too, without asking WeChat.
    calls_before = len(wechat.calls("message/template/send", QUOTA_APP))
    key2 = unique("k")
    await _send(stub, key2, **_template(unique("o"), QUOTA_APP))
    assert (await _settled(stub, key2)).status == pb.SEND_STATUS_PAUSED
    assert len(wechat.calls("message/template/send", QUOTA_APP)) == calls_before
    # Neither was reported failed.
    assert await _events(nats_client, key) == [] and await _events(nats_client, key2) == []
    # Another API of the same account is not paused.
    assert "message/custom/send" not in {q.api for q in quota.apis if q.HasField("paused_until")}
    async with httpx.AsyncClient(trust_env=False) as http:
        metrics = (await http.get(f"{gateway.http_url}/metrics")).text
    assert any(
        line.startswith("closedloop_gateway_quota_paused")
        and QUOTA_APP in line
        and "message/template/send" in line
        and line.endswith(" 1.0")
        for line in metrics.splitlines()
    )


async def _publish(
    nc: Client, event_type: str, customer_id: str, payload: Any, at: datetime
) -> None:
    js = nc.jetstream()
    await ensure_service_streams(js, "acquisition", replicas=1)
    env = new_envelope(
        producer="acquisition",
        event_type=event_type,
        tenant_id=TENANT,
        customer_id=customer_id,
        payload=payload,
        occurred_at=at,
    )
    await js.publish(
        subject_for("acquisition", event_type),
        env.SerializeToString(),
        headers={"Nats-Msg-Id": env.id},
    )


def _text(openid: str, text: str = "Hi, your parcel is on its way") -> dict[str, Any]:
    return {
        "official_account_text": pb.OfficialAccountText(app_id=WINDOW_APP, openid=openid, text=text)
    }


async def test_customer_service_text_only_within_48_hours(
    stub: Any, wechat: Emulator, nats_client: Client
) -> None:
    openid, old_openid, customer = unique("o"), unique("o"), unique("c")
    # No interaction yet: refused, nothing stored or sent.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _send(stub, unique("k"), **_text(openid))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "48 hours" in (refused.value.details() or "")
    # A subscribe 49 hours ago does not open it; one now does.
    now = datetime.now(UTC)

    def subscribe(oid: str) -> acq.TouchRecorded:
        return acq.TouchRecorded(
            touch_id=unique("t"),
            kind=acq.TOUCH_KIND_SUBSCRIBE,
            identities=[
                c.Identity(kind=c.IDENTITY_KIND_WECHAT_OPENID, scope=WINDOW_APP, value=oid)
            ],
        )

    await _publish(
        nats_client, "touch.recorded", "", subscribe(old_openid), now - timedelta(hours=49)
    )
    await _publish(nats_client, "touch.recorded", "", subscribe(openid), now)
    key = unique("k")

    async def accepted() -> bool:
        try:
            await _send(stub, key, **_text(openid))
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION
            return False
        return True

    await eventually(accepted)
    assert (await _settled(stub, key)).status == pb.SEND_STATUS_SENT
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await _send(stub, unique("k"), **_text(old_openid))
    assert stale.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # Outside the window a template message still goes out.
    tkey = unique("k")
    await _send(stub, tkey, **_template(old_openid, WINDOW_APP))
    assert (await _settled(stub, tkey)).status == pb.SEND_STATUS_SENT
    # A message from the customer (interaction.recorded, by customer) opens it for them.
    await _publish(
        nats_client,
        "interaction.recorded",
        customer,
        acq.InteractionRecorded(interaction_id=unique("i"), kind="text", app_id=WINDOW_APP),
        now,
    )
    ckey = unique("k")

    async def customer_accepted() -> bool:
        try:
            await stub.SendMessage(
                pb.SendMessageRequest(
                    tenant_id=TENANT,
                    idempotency_key=ckey,
                    customer_id=customer,
                    **_text(unique("o")),
                )
            )
        except grpc.aio.AioRpcError:
            return False
        return True

    await eventually(customer_accepted)
    texts = [
        x for x in wechat.calls("message/custom/send", WINDOW_APP) if x["body"]["touser"] == openid
    ]
    assert (
        len(texts) == 1 and texts[0]["body"]["text"]["content"] == "Hi, your parcel is on its way"
    )


async def test_bad_send_requests(stub: Any) -> None:
    cases = [
        pb.SendMessageRequest(tenant_id=TENANT, **_template("o-1")),  # no key
        pb.SendMessageRequest(tenant_id=TENANT, idempotency_key=unique("k")),  # no message
        pb.SendMessageRequest(
            tenant_id=TENANT,
            idempotency_key=unique("k"),
            wecom_msg_template=pb.WecomMsgTemplate(sender_userid="rep", text="x"),
        ),
        pb.SendMessageRequest(
            tenant_id=TENANT,
            idempotency_key=unique("k"),
            official_account_template=pb.OfficialAccountTemplate(openid="o-1"),
        ),
    ]
    for request in cases:
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.SendMessage(request)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetSend(pb.GetSendRequest(tenant_id=TENANT, send_id="01NOSUCHSEND"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await stub.SendMessage(
            pb.SendMessageRequest(
                tenant_id="t-gw-other", idempotency_key=unique("k"), **_template("o-1")
            )
        )
    assert foreign.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_every_send_kind_has_one_api_and_one_event_kind() -> None:
    """The kinds, their WeChat APIs and their MessageKind in the events and the API: one map
    each, covering every kind, no two kinds alike."""
    assert set(KIND_PB) == set(API_OF) == set(get_args(Kind))
    assert len(set(KIND_PB.values())) == len(KIND_PB)
    assert ev.MESSAGE_KIND_UNSPECIFIED not in KIND_PB.values()
