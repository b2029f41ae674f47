"""The gateway client: which gateway command a message becomes; sends and contact lookups
against the real gateway and its WeChat emulator; an unreachable gateway.

Transfers through the client are tested where they are used (services/conversion/tests/
test_gateway.py), as is the whole loop (tests/test_whole_loop.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from pydantic import SecretStr

import closedloop_gateway.main
from gateway_helpers import Emulator, emulator, gateway_overrides
from loopkit.customers import IdentityValue
from loopkit.errors import DependencyUnavailable, NotFound
from loopkit.gateway_client import GatewayClient, send_request
from loopkit.wechat.sender import OutboundMessage, SendRefused
from loopkit_dev.natsserver import NatsServer, free_port
from loopkit_dev.testing import BUSY_MACHINE_DEADLINE_S, eventually, running_service

APP = "wx-app-1"
CORP = "ww-corp-1"
TENANT = "t-kit-gw"


def message(kind: str, recipient: IdentityValue, **params: str) -> OutboundMessage:
    return OutboundMessage(
        tenant_id="t1",
        customer_id="c1",
        recipient=recipient,
        kind=kind,
        content="hello",
        params=params,
        key=f"k-{kind}",
    )


def test_a_welcome_becomes_wecoms_welcome_with_the_callbacks_code() -> None:
    to = IdentityValue("wecom_external_userid", "wm-1", scope=CORP)
    request = send_request(message("welcome", to, welcome_code="WC-1", sender="rep1"))
    assert request.WhichOneof("message") == "wecom_welcome"
    assert (request.tenant_id, request.idempotency_key, request.customer_id) == (
        "t1",
        "k-welcome",
        "c1",
    )
    welcome = request.wecom_welcome
    assert (welcome.corp_id, welcome.welcome_code, welcome.text) == (CORP, "WC-1", "hello")


def test_a_message_to_a_wecom_contact_is_the_reps_1to1_broadcast() -> None:
    to = IdentityValue("wecom_external_userid", "wm-2", scope=CORP)
    request = send_request(message("mass", to, sender="zhangsan"))
    assert request.WhichOneof("message") == "wecom_msg_template"
    sent = request.wecom_msg_template
    assert (sent.corp_id, sent.sender_userid, list(sent.external_userids), sent.text) == (
        CORP,
        "zhangsan",
        ["wm-2"],
        "hello",
    )


def test_a_text_to_an_openid_is_a_customer_service_message() -> None:
    to = IdentityValue("wechat_openid", "o-1", scope=APP)
    for kind in ("text", "mass"):
        request = send_request(message(kind, to))
        assert request.WhichOneof("message") == "official_account_text"
        assert (request.official_account_text.app_id, request.official_account_text.openid) == (
            APP,
            "o-1",
        )


def test_a_template_to_an_openid_carries_its_keywords() -> None:
    to = IdentityValue("wechat_openid", "o-1", scope=APP)
    request = send_request(
        message("template", to, template_id="TPL", url="https://x/y", **{"data.first": "Hi"})
    )
    assert request.WhichOneof("message") == "official_account_template"
    sent = request.official_account_template
    assert (sent.template_id, sent.url, dict(sent.data)) == ("TPL", "https://x/y", {"first": "Hi"})
    # Without keywords the content is the template's `content`.
    plain = send_request(message("mass", to, template_id="TPL")).official_account_template
    assert dict(plain.data) == {"content": "hello"}


def test_what_wechat_cannot_reach_is_refused_and_a_message_without_key_is_a_bug() -> None:
    with pytest.raises(SendRefused, match="phone"):
        send_request(message("mass", IdentityValue("phone", "+8613800000000")))
    keyless = OutboundMessage(
        "t1", "c1", IdentityValue("wechat_openid", "o-1", scope=APP), "text", "hi"
    )
    with pytest.raises(ValueError, match="idempotency key"):
        send_request(keyless)


async def test_an_unreachable_gateway_is_a_dependency_outage_not_a_refusal() -> None:
    client = GatewayClient.connect(f"127.0.0.1:{free_port()}", timeout_s=2.0)
    try:
        to = IdentityValue("wechat_openid", "o-1", scope=APP)
        with pytest.raises(DependencyUnavailable, match="gateway: UNAVAILABLE"):
            await client.send(message("text", to))
        with pytest.raises(DependencyUnavailable):
            await client.external_contact("t1", CORP, "wm-1")
        with pytest.raises(DependencyUnavailable):
            await client.transfer(
                "t1", CORP, "a", "b", ["wm-1"], resigned=True, idempotency_key="k-1"
            )
        with pytest.raises(DependencyUnavailable):
            await client.transfer_results("t1", CORP, "a", "b", resigned=True)
        with pytest.raises(DependencyUnavailable):
            await client.send_many([message("text", to)])
    finally:
        await client.close()


# --- against the real gateway and the emulator ----------------------------------------------


@pytest.fixture(scope="module")
def wechat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with emulator(tmp_path_factory.mktemp("emulator")) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def gateway(
    nats_server: NatsServer, wechat: Emulator, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[GatewayClient]:
    """The real gateway in this process; the client waits for WeChat's answer."""
    state = tmp_path_factory.mktemp("gateway")
    accounts = {
        "official_accounts": [{"tenant_id": TENANT, "app_id": APP, "app_secret": "kit-app-5e1"}],
        "wecom_corps": [{"tenant_id": TENANT, "corp_id": CORP, "contact_secret": "kit-corp-7f2"}],
    }
    async with running_service(
        closedloop_gateway.main.DEFINITION,
        database_url=f"sqlite+aiosqlite:///{state}/gateway.db",
        nats_url=nats_server.url,
        state_dir=state,
        **{**gateway_overrides(wechat.url), "accounts": json.dumps(accounts)},
    ) as svc:
        client = GatewayClient.connect(
            svc.grpc_target,
            timeout_s=BUSY_MACHINE_DEADLINE_S,
            outcome_wait_s=BUSY_MACHINE_DEADLINE_S,
            api_token=SecretStr(svc.api_key or ""),
        )
        yield client
        await client.close()


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _to(openid: str) -> IdentityValue:
    return IdentityValue("wechat_openid", openid, scope=APP)


def _out(kind: str, recipient: IdentityValue, key: str, **params: str) -> OutboundMessage:
    return OutboundMessage(TENANT, "c1", recipient, kind, "hello", params, key=key)


async def test_a_send_goes_to_wechat_once_per_key(gateway: GatewayClient, wechat: Emulator) -> None:
    openid, key = _unique("o"), _unique("k")
    message = _out("template", _to(openid), key, template_id="tpl-1", **{"data.first": "Hi"})
    first = await gateway.send(message)
    assert (first.status, first.duplicate) == ("sent", False) and first.message_id
    again = await gateway.send(message)  # a caller's retry
    assert (again.message_id, again.duplicate, again.status) == (first.message_id, True, "sent")
    calls = [c for c in wechat.calls("message/template/send", APP) if c["body"]["touser"] == openid]
    assert len(calls) == 1
    assert calls[0]["body"]["data"] == {"first": {"value": "Hi"}}


async def test_what_wechat_or_the_gateway_refuses_is_send_refused(
    gateway: GatewayClient, wechat: Emulator
) -> None:
    # A follower who never interacted: outside the 48-hour window, refused before WeChat.
    with pytest.raises(SendRefused, match="48"):
        await gateway.send(_out("text", _to(_unique("o")), _unique("k")))
    # WeCom refuses a welcome code used twice (41051): the second send is refused.
    to = IdentityValue("wecom_external_userid", _unique("wm"), scope=CORP)
    code = _unique("WC")
    assert (await gateway.send(_out("welcome", to, _unique("k"), welcome_code=code))).status == (
        "sent"
    )
    with pytest.raises(SendRefused, match="41051"):
        await gateway.send(_out("welcome", to, _unique("k"), welcome_code=code))
    # An account that is not the tenant's.
    stranger = IdentityValue("wechat_openid", "o-x", scope="wx-not-ours")
    with pytest.raises(SendRefused):
        await gateway.send(_out("template", stranger, _unique("k"), template_id="tpl-1"))


async def test_send_many_answers_each_message_in_order(
    gateway: GatewayClient, wechat: Emulator
) -> None:
    """One SendMessages call for a page: each message its receipt or its refusal, in order;
    the page again returns the same sends and sends nothing twice."""
    openids = [_unique("o") for _ in range(3)]
    page = [
        _out("template", _to(o), _unique("k"), template_id="tpl-1", **{"data.first": "Hi"})
        for o in openids
    ]
    page.insert(1, _out("text", _to(_unique("o")), _unique("k")))  # outside the 48-hour window
    page.append(_out("template", IdentityValue("phone", "+8613800000000"), _unique("k")))
    first = await gateway.send_many(page)
    assert [type(r).__name__ for r in first] == [
        "SendReceipt",
        "SendRefused",
        "SendReceipt",
        "SendReceipt",
        "SendRefused",
    ]
    assert "48" in str(first[1]) and "phone" in str(first[4])
    again = await gateway.send_many(page)
    receipts = [r for r in first if not isinstance(r, SendRefused)]
    repeated = [r for r in again if not isinstance(r, SendRefused)]
    assert [r.message_id for r in repeated] == [r.message_id for r in receipts]
    assert all(r.duplicate for r in repeated)

    def at_wechat() -> list[str]:
        calls = wechat.calls("message/template/send", APP)
        return [c["body"]["touser"] for c in calls if c["body"]["touser"] in openids]

    await eventually(lambda: _async(len(at_wechat()) == 3))
    assert sorted(at_wechat()) == sorted(openids)
    assert await gateway.send_many([]) == []


async def _async(value: bool) -> bool:
    return value


async def test_a_rep_broadcast_to_a_wecom_contact(gateway: GatewayClient, wechat: Emulator) -> None:
    ext = _unique("wm")
    to = IdentityValue("wecom_external_userid", ext, scope=CORP)
    receipt = await gateway.send(_out("mass", to, _unique("k"), sender="rep-li"))
    assert receipt.status == "sent"
    [call] = [
        c
        for c in wechat.calls("externalcontact/add_msg_template", CORP)
        if c["body"]["external_userid"] == [ext]
    ]
    assert call["body"]["sender"] == "rep-li"
    # Without a sender (retention knows no WeCom user ids): the rep WeCom lists for the contact.
    known = _unique("wm")
    wechat.user(corp_id=CORP, external_userid=known, follow_userids=["rep-wang"])
    known_to = IdentityValue("wecom_external_userid", known, scope=CORP)
    assert (await gateway.send(_out("mass", known_to, _unique("k")))).status == "sent"
    [call] = [
        c
        for c in wechat.calls("externalcontact/add_msg_template", CORP)
        if c["body"]["external_userid"] == [known]
    ]
    assert call["body"]["sender"] == "rep-wang"
    stranger = IdentityValue("wecom_external_userid", _unique("wm"), scope=CORP)
    with pytest.raises(SendRefused, match="no rep"):
        await gateway.send(_out("mass", stranger, _unique("k")))


async def test_wecoms_record_of_a_contact(gateway: GatewayClient, wechat: Emulator) -> None:
    ext, unionid = _unique("wm"), _unique("u")
    wechat.user(corp_id=CORP, external_userid=ext, unionid=unionid, follow_userids=["rep-li"])
    contact = await gateway.external_contact(TENANT, CORP, ext)
    assert (contact.external_userid, contact.unionid, contact.wechat_user) == (ext, unionid, True)
    assert contact.follow_userids == ("rep-li",)
    with pytest.raises(NotFound):
        await gateway.external_contact(TENANT, CORP, _unique("wm-nobody"))
