"""Two gateway replicas on one database split the per-second pace: together they stay under
the limit WeChat enforces, where each pacing at the whole limit would exceed it."""

from __future__ import annotations

import asyncio
import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from test_tokens import _gateway_process, gateway_env

from closedloop.gateway.v1 import gateway_pb2 as pb
from closedloop.gateway.v1 import gateway_pb2_grpc
from closedloop_gateway.main import DEFINITION
from gateway_helpers import APP, TENANT, emulator, unique
from loopkit import migrations
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import PostgresServer, api_keys, eventually

API = "message/template/send"
PER_SECOND = 10


@pytest.mark.postgres
async def test_two_replicas_share_the_per_second_limit(
    postgres: PostgresServer, nats_server: NatsServer, tmp_path: Path
) -> None:
    url = await postgres.fresh_database()
    await asyncio.to_thread(
        migrations.upgrade, DEFINITION.migrations_dir, url, service=DEFINITION.spec.name
    )
    with ExitStack() as stack:
        wechat = stack.enter_context(emulator(tmp_path))
        # WeChat allows PER_SECOND calls in any second; both gateways are told the same limit.
        wechat.post("/emulator/quota", {"api": API, "app_id": APP, "per_second": PER_SECOND})
        env = gateway_env(url, nats_server.url, wechat.url, tmp_path)
        env["CLOSEDLOOP_GATEWAY_QUOTAS"] = json.dumps({API: {"per_second": PER_SECOND}})
        # 60 % of it: shared, the two send 6 a second (room for calls that arrive bunched on a
        # busy machine); each at the whole pace, they would send 12 and be refused (45011).
        env["CLOSEDLOOP_GATEWAY_QUOTA_HEADROOM"] = "0.6"
        targets = [
            stack.enter_context(_gateway_process(env, tmp_path / f"gateway-{n}.log"))[1]
            for n in range(2)
        ]
        channels = [api_keys().channel(t) for t in targets]
        stubs: list[Any] = [gateway_pb2_grpc.GatewayServiceStub(c) for c in channels]  # type: ignore[no-untyped-call]
        try:
            ids: list[str] = []
            for stub in stubs:  # 30 sends stored through each replica, taken by both workers
                items = [
                    pb.SendMessageRequest(
                        idempotency_key=unique("k"),
                        official_account_template=pb.OfficialAccountTemplate(
                            app_id=APP, openid=unique("o"), template_id="tpl", data={"k": "v"}
                        ),
                    )
                    for _ in range(30)
                ]
                answer = await stub.SendMessages(
                    pb.SendMessagesRequest(tenant_id=TENANT, sends=items)
                )
                ids += [r.send.send_id for r in answer.results]

            async def all_settled() -> bool:
                if any(c["errcode"] for c in await asyncio.to_thread(wechat.calls, API, APP)):
                    return True  # refused: an API paused for a minute; the assertion says so
                for send_id in ids:
                    got = await stubs[0].GetSend(
                        pb.GetSendRequest(tenant_id=TENANT, send_id=send_id)
                    )
                    if got.send.status != pb.SEND_STATUS_SENT:
                        return False
                return True

            await eventually(all_settled, timeout_s=90, interval_s=0.5)
        finally:
            for channel in channels:
                await channel.close()
        calls = wechat.calls(API, APP)
        assert [c["errcode"] for c in calls if c["errcode"] != 0] == []
        assert len(calls) == 60
