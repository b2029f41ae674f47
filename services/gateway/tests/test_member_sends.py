"""Texts to a corp's members (a rep's task notice) from the corp's application: message/send with
the application's own token (not the contact secret's), through the durable send path, refreshed
once and retried when WeCom refuses that token."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest
from nats.aio.client import Client

from closedloop.events.v1 import gateway_events_pb2 as ev
from closedloop.gateway.v1 import gateway_pb2 as pb
from gateway_helpers import APP_CORP, APP_CORP_AGENT, CORP, TENANT, Emulator, unique
from loopkit.events import unpack
from loopkit_dev.testing import eventually, read_events


async def _member_text(stub: Any, key: str, userid: str, corp_id: str = APP_CORP) -> pb.Send:
    answer = await stub.SendMessage(
        pb.SendMessageRequest(
            tenant_id=TENANT,
            idempotency_key=key,
            wecom_member_text=pb.WecomMemberText(corp_id=corp_id, userid=userid, text="A task"),
        )
    )
    return answer.send


async def _settled(stub: Any, key: str) -> pb.Send:
    found: list[pb.Send] = []

    async def check() -> bool:
        answer = await stub.GetSend(pb.GetSendRequest(tenant_id=TENANT, idempotency_key=key))
        found.append(answer.send)
        return answer.send.status in (pb.SEND_STATUS_SENT, pb.SEND_STATUS_FAILED)

    await eventually(check, timeout_s=30)
    return found[-1]


def _sends_to(wechat: Emulator, userid: str) -> list[dict[str, Any]]:
    return [c for c in wechat.calls("message/send", APP_CORP) if c["body"].get("touser") == userid]


def _app_tokens(wechat: Emulator) -> int:
    return sum(1 for c in wechat.calls("gettoken", APP_CORP) if c["body"].get("app"))


async def test_a_member_text_goes_out_once_with_the_application_token(
    stub: Any, wechat: Emulator, nats_client: Client
) -> None:
    key, userid = unique("notice"), unique("rep")
    await _member_text(stub, key, userid)
    again = await _member_text(stub, key, userid)  # the same key: the same send
    sent = await _settled(stub, key)
    assert sent.status == pb.SEND_STATUS_SENT, sent.errmsg
    assert sent.kind == ev.MESSAGE_KIND_WECOM_MEMBER_TEXT and sent.account_id == APP_CORP
    assert again.send_id == sent.send_id
    calls = _sends_to(wechat, userid)
    assert len(calls) == 1 and calls[0]["errcode"] == 0
    body = calls[0]["body"]
    assert body["msgtype"] == "text" and body["text"]["content"] == "A task"
    assert str(body["agentid"]) == APP_CORP_AGENT
    assert _app_tokens(wechat) >= 1

    async def published() -> list[ev.MessageSent]:
        found = await read_events(nats_client, "GATEWAY", tenant_id=TENANT)
        sent = [unpack(e, ev.MessageSent) for e in found if e.type == "message.sent"]
        return [m for m in sent if m.idempotency_key == key]

    await eventually(published)
    [event] = await published()
    assert event.kind == ev.MESSAGE_KIND_WECOM_MEMBER_TEXT and event.account_id == APP_CORP


async def test_a_corp_without_an_application_cannot_message_members(stub: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _member_text(stub, unique("notice"), "rep-x", corp_id=CORP)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "agent_secret" in (caught.value.details() or "")


@pytest.mark.parametrize("refusal", [40014, 42001])
async def test_a_refused_application_token_is_refreshed_once_and_retried(
    stub: Any, wechat: Emulator, refusal: int
) -> None:
    # Warm the application token first, so the refusal below is what makes the refresh.
    warm = unique("warm")
    await _member_text(stub, warm, unique("rep"))
    assert (await _settled(stub, warm)).status == pb.SEND_STATUS_SENT
    fetched = _app_tokens(wechat)
    if refusal == 42001:
        assert wechat.post("/emulator/tokens/expire", {"corp_id": APP_CORP, "app": True})["ok"]
    else:
        wechat.fail("message/send", refusal, corp_id=APP_CORP)
    key, userid = unique("notice"), unique("rep")
    await _member_text(stub, key, userid)
    sent = await _settled(stub, key)
    assert sent.status == pb.SEND_STATUS_SENT, sent.errmsg
    assert sent.attempts == 1  # the refresh-and-retry is inside one attempt
    assert [c["errcode"] for c in _sends_to(wechat, userid)] == [refusal, 0]
    assert _app_tokens(wechat) == fetched + 1


def test_the_emulator_tells_the_two_wecom_tokens_apart(wechat: Emulator) -> None:
    corp, agent = unique("ww-emu"), "1000009"
    wechat.post("/emulator/apps", {"corp_id": corp, "agent_id": agent, "secret": "agent-s"})
    with httpx.Client(base_url=wechat.url, trust_env=False) as http:

        def token(secret: str) -> str:
            answer = http.get("/cgi-bin/gettoken", params={"corpid": corp, "corpsecret": secret})
            return str(answer.json()["access_token"])

        contact, app = token("contact-s"), token("agent-s")
        body = {"touser": "rep", "agentid": agent, "msgtype": "text", "text": {"content": "x"}}

        def call(api: str, value: str, data: dict[str, Any]) -> int:
            answer = http.post(f"/cgi-bin/{api}", params={"access_token": value}, json=data)
            return int(answer.json()["errcode"])

        assert call("message/send", contact, body) == 48002
        assert call("message/send", app, body) == 0
        assert call("message/send", app, {**body, "agentid": "1"}) == 40056
        assert call("externalcontact/get", app, {"external_userid": "x"}) == 48002
        # Both tokens stay valid: the application's does not replace the contact one.
        assert call("externalcontact/get", contact, {"external_userid": "x"}) == 84061


async def test_quota_status_shows_the_application_s_message_send(stub: Any) -> None:
    """A corp with an application: GetQuotaStatus shows the application's message/send (used
    today, its pace) under the application's id, apart from the contact secret's APIs."""
    key = unique("notice")
    await _member_text(stub, key, unique("rep"))
    assert (await _settled(stub, key)).status == pb.SEND_STATUS_SENT
    status = await stub.GetQuotaStatus(pb.GetQuotaStatusRequest(tenant_id=TENANT, corp_id=APP_CORP))
    assert status.account_id == APP_CORP
    assert status.application_account_id == f"{APP_CORP}/app"
    [member_send] = status.application_apis
    assert member_send.api == "message/send"
    assert member_send.used_today >= 1 and member_send.rate_per_second == 20
    assert not member_send.HasField("paused_until")
    assert "message/send" not in {q.api for q in status.apis}
    assert "externalcontact/add_msg_template" in {q.api for q in status.apis}
    # A corp without an application, and an official account, have none.
    plain = await stub.GetQuotaStatus(pb.GetQuotaStatusRequest(tenant_id=TENANT, corp_id=CORP))
    assert (plain.application_account_id, list(plain.application_apis)) == ("", [])
    oa = await stub.GetQuotaStatus(pb.GetQuotaStatusRequest(tenant_id=TENANT))
    assert oa.application_account_id == "" and not oa.application_apis
    assert "message/send" not in {q.api for q in oa.apis}
