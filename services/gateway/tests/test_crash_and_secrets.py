"""A gateway killed while WeChat is answering a send never sends it twice; and no secret or
token ever reaches a log line, an event or a table."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

import grpc
import pytest
from nats.aio.client import Client
from sqlalchemy import text
from test_tokens import _gateway_process, gateway_env

from closedloop.events.v1 import gateway_events_pb2 as ev
from closedloop.gateway.v1 import gateway_pb2 as pb
from closedloop.gateway.v1 import gateway_pb2_grpc
from closedloop_gateway.main import DEFINITION
from closedloop_gateway.sends.service import IN_DOUBT_MESSAGE
from gateway_helpers import APP, CORP, SECRETS, TENANT, Emulator, unique, wait_until
from loopkit import migrations
from loopkit.events import unpack
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import PostgresServer, RunningService, api_keys, eventually, read_events


def _template(openid: str) -> pb.OfficialAccountTemplate:
    return pb.OfficialAccountTemplate(
        app_id=APP, openid=openid, template_id="tpl-1", data={"first": "hello"}
    )


async def _killed_mid_send(
    env: dict[str, str],
    tmp_path: Path,
    wechat: Emulator,
    request: pb.SendMessageRequest,
    *,
    delivered: Any,
    api: str,
    account: str,
) -> tuple[pb.Send, pb.Send]:
    """Send, kill the gateway while WeChat holds its answer, restart, ask again with the same
    key; returns the first answer and the send once settled."""
    wechat.fail(
        api, 0, delay_s=30, **{"corp_id" if account.startswith("ww") else "app_id": account}
    )
    with _gateway_process(env, tmp_path / "first.log") as (process, target):
        async with api_keys().channel(target) as channel:
            stub: Any = gateway_pb2_grpc.GatewayServiceStub(channel)  # type: ignore[no-untyped-call]
            first = (await stub.SendMessage(request)).send
        await asyncio.to_thread(wait_until, delivered)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    with _gateway_process(env, tmp_path / "second.log") as (_, target):
        async with api_keys().channel(target) as channel:
            stub = gateway_pb2_grpc.GatewayServiceStub(channel)  # type: ignore[no-untyped-call]
            again = await stub.SendMessage(request)
            assert not again.created and again.send.send_id == first.send_id
            found: list[pb.Send] = []

            async def settled() -> bool:
                answer = await stub.GetSend(
                    pb.GetSendRequest(tenant_id=TENANT, send_id=first.send_id)
                )
                found.append(answer.send)
                return answer.send.status in (pb.SEND_STATUS_FAILED, pb.SEND_STATUS_SENT)

            await eventually(settled, timeout_s=30)
            # Asked again after it settled: still the same send, nothing new goes out.
            assert (await stub.SendMessage(request)).send.send_id == first.send_id
    return first, found[-1]


async def _crash_env(
    postgres: PostgresServer, nats_server: NatsServer, wechat: Emulator, tmp_path: Path
) -> dict[str, str]:
    url = await postgres.fresh_database()
    await asyncio.to_thread(
        migrations.upgrade, DEFINITION.migrations_dir, url, service=DEFINITION.spec.name
    )
    env = gateway_env(url, nats_server.url, wechat.url, tmp_path)
    env["CLOSEDLOOP_GATEWAY_SEND_LEASE_S"] = "2"
    return env


@pytest.mark.postgres
async def test_killed_mid_send_the_same_key_never_sends_twice(
    postgres: PostgresServer,
    nats_server: NatsServer,
    nats_client: Client,
    wechat: Emulator,
    tmp_path: Path,
) -> None:
    env = await _crash_env(postgres, nats_server, wechat, tmp_path)
    key, openid = unique("k"), unique("o")
    request = pb.SendMessageRequest(
        tenant_id=TENANT, idempotency_key=key, official_account_template=_template(openid)
    )

    def delivered() -> list[dict[str, Any]]:
        return [
            c for c in wechat.calls("message/template/send", APP) if c["body"]["touser"] == openid
        ]

    first, final = await _killed_mid_send(
        env,
        tmp_path,
        wechat,
        request,
        delivered=delivered,
        api="message/template/send",
        account=APP,
    )
    # WeChat cannot be asked whether a template message went out: failed, never resent.
    assert final.status == pb.SEND_STATUS_FAILED and final.errmsg == IN_DOUBT_MESSAGE
    assert len(delivered()) == 1
    failed = [
        unpack(e, ev.MessageFailed)
        for e in await read_events(nats_client, "GATEWAY", tenant_id=TENANT)
        if e.type == "message.failed"
    ]
    assert [f.send_id for f in failed].count(first.send_id) == 1


@pytest.mark.postgres
async def test_a_broadcast_left_in_doubt_is_looked_up_not_resent(
    postgres: PostgresServer,
    nats_server: NatsServer,
    wechat: Emulator,
    tmp_path: Path,
) -> None:
    env = await _crash_env(postgres, nats_server, wechat, tmp_path)
    sender, text = unique("rep"), f"Spring offer {unique('x')}"
    request = pb.SendMessageRequest(
        tenant_id=TENANT,
        idempotency_key=unique("k"),
        wecom_msg_template=pb.WecomMsgTemplate(
            sender_userid=sender, external_userids=["wm-1"], text=text
        ),
    )

    def delivered() -> list[dict[str, Any]]:
        return [
            c
            for c in wechat.calls("externalcontact/add_msg_template", CORP)
            if c["body"]["sender"] == sender
        ]

    _, final = await _killed_mid_send(
        env,
        tmp_path,
        wechat,
        request,
        delivered=delivered,
        api="externalcontact/add_msg_template",
        account=CORP,
    )
    # WeCom lists the sender's broadcasts: the gateway found it there and kept its msgid.
    assert final.status == pb.SEND_STATUS_SENT and final.wechat_msgid.startswith("msg")
    assert len(delivered()) == 1
    assert wechat.calls("externalcontact/get_groupmsg_list_v2", CORP)


async def test_secrets_and_tokens_never_leave_the_gateway(
    stub: Any,
    gateway: RunningService,
    wechat: Emulator,
    nats_client: Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # A token refresh (40001), a busy retry, a failed OAuth exchange and sends, all logged.
    wechat.fail("qrcode/create", 40001, app_id=APP)
    await stub.CreateQrCode(pb.CreateQrCodeRequest(tenant_id=TENANT, scene_str="secrets"))
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.ExchangeOAuthCode(pb.ExchangeOAuthCodeRequest(tenant_id=TENANT, code="forged"))
    wechat.fail("message/template/send", -1, app_id=APP)
    key = unique("k")
    await stub.SendMessage(
        pb.SendMessageRequest(
            tenant_id=TENANT, idempotency_key=key, official_account_template=_template(unique("o"))
        )
    )

    async def sent() -> bool:
        answer = await stub.GetSend(pb.GetSendRequest(tenant_id=TENANT, idempotency_key=key))
        return bool(answer.send.status == pb.SEND_STATUS_SENT)

    await eventually(sent)
    assert "access token of wx-gw-main refreshed" in caplog.text  # the logs were captured
    forbidden = [*SECRETS.values(), "emu-oa-", "emu-wecom-", "emu-sns", "secret="]
    leaked = [s for s in forbidden if s in caplog.text]
    assert leaked == []
    events = await read_events(nats_client, "GATEWAY")
    assert events
    blob = b"".join(e.SerializeToString() for e in events)
    assert [s for s in forbidden if s.encode() in blob] == []
    runtime = gateway.runtime
    assert [s for s in SECRETS.values() if s in repr(runtime.settings)] == []
    async with runtime.engine.connect() as conn:
        tokens = (
            await conn.execute(text("SELECT account_id, token_cipher FROM access_tokens"))
        ).all()
        # Sealed, never plain ("" while a first fetch is still under way).
        assert any(t[1] for t in tokens)
        assert all(not t[1].startswith("emu-") for t in tokens), tokens
        for table in ("access_tokens", "sends", "quota_usage", "outbox"):
            rows = (await conn.execute(text(f"SELECT * FROM {table}"))).all()
            dump = repr(rows)
            assert [s for s in forbidden if s in dump] == [], table


@pytest.mark.postgres
async def test_sends_waiting_for_the_pace_longer_than_their_lease_are_not_in_doubt(
    postgres: PostgresServer, nats_server: NatsServer, wechat: Emulator, tmp_path: Path
) -> None:
    """A claimed send may wait for the pace longer than its lease (2 s here; 8 sends at 1.6/s
    take 5 s): its live replica renews the claim, so it is sent, not settled as in doubt."""
    env = await _crash_env(postgres, nats_server, wechat, tmp_path)
    env["CLOSEDLOOP_GATEWAY_QUOTAS"] = '{"message/template/send": {"per_second": 2}}'
    openids = [unique("o") for _ in range(8)]
    items = [
        pb.SendMessageRequest(idempotency_key=unique("k"), official_account_template=_template(o))
        for o in openids
    ]
    with _gateway_process(env, tmp_path / "paced.log") as (_, target):
        async with api_keys().channel(target) as channel:
            stub: Any = gateway_pb2_grpc.GatewayServiceStub(channel)  # type: ignore[no-untyped-call]
            answer = await stub.SendMessages(pb.SendMessagesRequest(tenant_id=TENANT, sends=items))
            ids = [r.send.send_id for r in answer.results]
            found: list[pb.Send] = []

            async def settled() -> bool:
                found.clear()
                for send_id in ids:
                    got = await stub.GetSend(pb.GetSendRequest(tenant_id=TENANT, send_id=send_id))
                    found.append(got.send)
                done = (pb.SEND_STATUS_SENT, pb.SEND_STATUS_FAILED)
                return all(s.status in done for s in found)

            await eventually(settled, timeout_s=60)
    assert [s.errmsg for s in found if s.status != pb.SEND_STATUS_SENT] == []
    calls = [c["body"]["touser"] for c in wechat.calls("message/template/send", APP)]
    assert all(calls.count(o) == 1 for o in openids)
