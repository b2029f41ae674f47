"""SendMessage calls that arrive together are stored together: one INSERT for the lot, each call
answered as if alone (its send, created or not, or its own error), and each send made once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from closedloop.gateway.v1 import gateway_pb2 as pb
from closedloop_gateway.transport.grpc import GatewayServicer
from gateway_helpers import APP, TENANT, Emulator, unique
from loopkit.errors import AlreadyExists, InvalidArgument
from loopkit_dev.testing import RunningService, eventually


def _request(key: str, openid: str, template_id: str = "tpl-store") -> pb.SendMessageRequest:
    template = pb.OfficialAccountTemplate(
        app_id=APP, openid=openid, template_id=template_id, data={"k": "v"}
    )
    return pb.SendMessageRequest(
        tenant_id=TENANT, idempotency_key=key, official_account_template=template
    )


@pytest.fixture
def servicer(gateway: RunningService) -> GatewayServicer:
    found = gateway.runtime.parts["servicer"]
    assert isinstance(found, GatewayServicer)
    return found


@pytest.fixture
def send_inserts(gateway: RunningService) -> Iterator[list[str]]:
    """The INSERT statements into `sends` the gateway makes meanwhile."""
    engine = gateway.runtime.engine.sync_engine
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO SENDS"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def _sent_once(wechat: Emulator, openids: list[str]) -> None:
    async def all_sent() -> bool:
        calls = [c["body"]["touser"] for c in wechat.calls("message/template/send", APP)]
        return all(calls.count(o) >= 1 for o in openids)

    await eventually(all_sent, timeout_s=30)
    calls = [c["body"]["touser"] for c in wechat.calls("message/template/send", APP)]
    assert all(calls.count(o) == 1 for o in openids)


async def test_concurrent_calls_are_stored_in_one_statement(
    servicer: GatewayServicer, send_inserts: list[str], wechat: Emulator
) -> None:
    keys, openids = [unique("k") for _ in range(20)], [unique("o") for _ in range(20)]
    requests = [_request(k, o) for k, o in zip(keys, openids, strict=True)]
    requests += [
        _request(keys[0], openids[0]),  # the same send again: its first call's send
        _request(keys[1], unique("o")),  # the key of another message
        _request(unique("k"), ""),  # no openid
    ]
    answers = await asyncio.gather(
        *(servicer.SendMessage(r, None) for r in requests),  # type: ignore[arg-type]
        return_exceptions=True,
    )
    assert len(send_inserts) == 1
    firsts = answers[:20]
    assert all(isinstance(a, pb.SendMessageResponse) and a.created for a in firsts)
    assert len({a.send.send_id for a in firsts}) == 20  # type: ignore[union-attr]
    again, other, bad = answers[20:]
    assert isinstance(again, pb.SendMessageResponse) and not again.created
    assert again.send.send_id == firsts[0].send.send_id  # type: ignore[union-attr]
    assert isinstance(other, AlreadyExists) and isinstance(bad, InvalidArgument)
    await _sent_once(wechat, openids)


async def test_a_cancelled_call_leaves_the_others_store_be(
    servicer: GatewayServicer, stub: Any, wechat: Emulator
) -> None:
    """A caller gone (its deadline passed) while its call waits to be stored: the others are
    stored and answered, and its send is stored too (asking again answers it, created False)."""
    keys, openids = [unique("k") for _ in range(5)], [unique("o") for _ in range(5)]
    calls = [
        asyncio.create_task(servicer.SendMessage(_request(k, o), None))  # type: ignore[arg-type]
        for k, o in zip(keys, openids, strict=True)
    ]
    await asyncio.sleep(0)  # every call is waiting for the store now
    calls[2].cancel()
    answers = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(answers[2], asyncio.CancelledError)
    assert all(
        isinstance(a, pb.SendMessageResponse) and a.created for i, a in enumerate(answers) if i != 2
    )
    again = await stub.SendMessage(_request(keys[2], openids[2]))
    assert not again.created
    await _sent_once(wechat, openids)
