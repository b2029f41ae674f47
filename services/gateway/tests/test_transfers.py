"""Transfers are asked of WeCom once per idempotency key: a retried request gets the stored
answer, and one whose answer was lost is reconciled from WeCom's transfer_result instead of being
asked again (WeCom refuses a customer already in transfer)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest

from closedloop.gateway.v1 import gateway_pb2 as pb
from closedloop.gateway.v1 import gateway_pb2_grpc
from closedloop_gateway.main import DEFINITION
from gateway_helpers import CORP, TENANT, Emulator, gateway_overrides
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import running_service

RESIGNED = "externalcontact/resigned/transfer_customer"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _request(key: str, customers: list[str], handover: str, takeover: str) -> Any:
    return pb.TransferCustomersRequest(
        tenant_id=TENANT,
        handover_userid=handover,
        takeover_userid=takeover,
        external_userids=customers,
        resigned=True,
        idempotency_key=key,
    )


def _asked(wechat: Emulator, api: str, customer: str) -> int:
    """How many calls of `api` named the customer."""
    return sum(customer in c["body"].get("external_userid", []) for c in wechat.calls(api, CORP))


def _answer(response: Any) -> list[tuple[str, int]]:
    return [(c.external_userid, c.errcode) for c in response.customers]


async def test_a_retried_transfer_asks_wecom_once(stub: Any, wechat: Emulator) -> None:
    handover, takeover = _unique("rep"), _unique("rep")
    customers = [_unique("wm"), _unique("wm")]
    key = _unique("handover")
    first = await stub.TransferCustomers(_request(key, customers, handover, takeover))
    again = await stub.TransferCustomers(_request(key, customers, handover, takeover))
    assert _answer(first) == _answer(again) == [(c, 0) for c in customers]
    assert [_asked(wechat, RESIGNED, c) for c in customers] == [1, 1]
    # The key names that request: another one under it is refused, nothing asked.
    other = [_unique("wm")]
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await stub.TransferCustomers(_request(key, other, handover, takeover))
    assert reused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert _asked(wechat, RESIGNED, other[0]) == 0
    # A new key is a new request (say, the customer came back and is handed over again).
    await stub.TransferCustomers(_request(_unique("handover"), customers[:1], handover, takeover))
    assert _asked(wechat, RESIGNED, customers[0]) == 2
    with pytest.raises(grpc.aio.AioRpcError) as keyless:
        await stub.TransferCustomers(_request("", other, handover, takeover))
    assert keyless.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "idempotency_key" in (keyless.value.details() or "")


async def test_a_customer_still_in_transfer_is_refused_by_wecom_and_taken_as_in_progress(
    stub: Any, wechat: Emulator
) -> None:
    """WeCom refuses to transfer a customer whose earlier transfer is still waiting (40129);
    the gateway answers such a customer as accepted for transfer (the transfer under way is
    read back from transfer_result), never as refused."""
    # The emulator, asked directly (a corp of its own): the second request is refused.
    customer, corp = _unique("wm"), _unique("ww-direct")
    with wechat.client() as http:
        token = http.get("/cgi-bin/gettoken", params={"corpid": corp, "corpsecret": "s"})
        params = {"access_token": token.json()["access_token"]}

        def ask(takeover: str) -> list[dict[str, Any]]:
            body = {
                "handover_userid": "a",
                "takeover_userid": takeover,
                "external_userid": [customer],
            }
            answer = http.post(
                "/cgi-bin/externalcontact/transfer_customer", params=params, json=body
            )
            return list(answer.json()["customer"])

        assert ask("b") == [{"external_userid": customer, "errcode": 0}]
        assert ask("c") == [{"external_userid": customer, "errcode": 40129}]
    # Through the gateway: a new request for a customer still waiting (say, the caller lost its
    # first request and made a new one) is in progress, not refused.
    handover, takeover = _unique("rep"), _unique("rep")
    first = await stub.TransferCustomers(
        _request(_unique("handover"), [customer], handover, takeover)
    )
    second = await stub.TransferCustomers(
        _request(_unique("handover"), [customer], handover, takeover)
    )
    assert _answer(first) == _answer(second) == [(customer, 0)]
    assert _asked(wechat, RESIGNED, customer) == 2
    result = await stub.GetTransferResult(
        pb.GetTransferResultRequest(
            tenant_id=TENANT, handover_userid=handover, takeover_userid=takeover, resigned=True
        )
    )
    assert [(c.external_userid, c.status) for c in result.customers] == [
        (customer, pb.TRANSFER_STATUS_WAITING)
    ]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_transfer_whose_answer_was_lost_is_read_back_not_asked_again(
    backend: str,
    request: pytest.FixtureRequest,
    nats_server: NatsServer,
    wechat: Emulator,
    tmp_path: Path,
) -> None:
    """WeCom takes the transfer but its answer never arrives (the gateway gives up waiting):
    the caller's retry finds the customers in WeCom's transfer_result and does not ask again."""
    if backend == "postgres":
        url = await request.getfixturevalue("postgres").fresh_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
    settings = {**gateway_overrides(wechat.url), "wechat_timeout_s": 1.0}
    handover, takeover = _unique("rep"), _unique("rep")
    customers = [_unique("wm"), _unique("wm")]
    key = _unique("handover")
    async with running_service(
        DEFINITION, database_url=url, nats_url=nats_server.url, state_dir=tmp_path, **settings
    ) as gateway:
        stub: Any = gateway_pb2_grpc.GatewayServiceStub(gateway.channel)  # type: ignore[no-untyped-call]
        # WeCom carries the request out but answers after the gateway stopped waiting.
        wechat.fail(RESIGNED, 0, corp_id=CORP, delay_s=4)
        with pytest.raises(grpc.aio.AioRpcError) as lost:
            await stub.TransferCustomers(_request(key, customers, handover, takeover))
        assert lost.value.code() == grpc.StatusCode.UNAVAILABLE
        results_before = len(wechat.calls("externalcontact/resigned/transfer_result", CORP))
        retried = await stub.TransferCustomers(_request(key, customers, handover, takeover))
        assert _answer(retried) == [(c, 0) for c in customers]
        assert [_asked(wechat, RESIGNED, c) for c in customers] == [1, 1]
        read_back = len(wechat.calls("externalcontact/resigned/transfer_result", CORP))
        assert read_back > results_before
        # Settled now: a further retry is answered from the gateway alone.
        again = await stub.TransferCustomers(_request(key, customers, handover, takeover))
        assert _answer(again) == _answer(retried)
        assert len(wechat.calls("externalcontact/resigned/transfer_result", CORP)) == read_back
        assert [_asked(wechat, RESIGNED, c) for c in customers] == [1, 1]
