"""WeChat unreachable: calls answer UNAVAILABLE and sends wait and retry, never fail silently.
(The account registry's own tests are the kit's: libs/kit/tests/test_accounts.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from closedloop.gateway.v1 import gateway_pb2 as pb
from closedloop.gateway.v1 import gateway_pb2_grpc
from closedloop_gateway.main import DEFINITION
from gateway_helpers import APP, TENANT, gateway_overrides, unique
from loopkit_dev.natsserver import NatsServer, free_port
from loopkit_dev.testing import eventually, running_service


async def test_wechat_unreachable_is_unavailable_and_sends_retry(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with running_service(
        DEFINITION,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        nats_url=nats_server.url,
        state_dir=tmp_path,
        **{**gateway_overrides(nowhere), "send_retry_base_s": 0.05, "wechat_timeout_s": 2},
    ) as gateway:
        stub: Any = gateway_pb2_grpc.GatewayServiceStub(gateway.channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.aio.AioRpcError) as down:
            await stub.CreateQrCode(pb.CreateQrCodeRequest(tenant_id=TENANT, scene_str="s"))
        assert down.value.code() == grpc.StatusCode.UNAVAILABLE
        key = unique("k")
        await stub.SendMessage(
            pb.SendMessageRequest(
                tenant_id=TENANT,
                idempotency_key=key,
                official_account_template=pb.OfficialAccountTemplate(
                    app_id=APP, openid="o-1", template_id="tpl"
                ),
            )
        )
        seen: list[pb.Send] = []

        async def retried() -> bool:
            answer = await stub.GetSend(pb.GetSendRequest(tenant_id=TENANT, idempotency_key=key))
            seen.append(answer.send)
            return answer.send.status == pb.SEND_STATUS_QUEUED and answer.send.errmsg != ""

        await eventually(retried, timeout_s=20)
        # Still queued with the reason and the next try, not failed or lost.
        assert seen[-1].HasField("next_attempt_at")
