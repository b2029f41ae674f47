"""The gateway client: which gateway command a message becomes, and an unreachable gateway.

Sends, contact lookups and transfers against the real gateway and its WeChat emulator are tested
where they are used (services/conversion/tests/test_gateway.py, tests/test_whole_loop.py).
"""

from __future__ import annotations

import pytest

from loopkit.customers import IdentityValue
from loopkit.errors import DependencyUnavailable
from loopkit.gateway_client import GatewayClient, send_request
from loopkit.natsserver import free_port
from loopkit.wechat.sender import OutboundMessage, SendRefused

APP = "wx-app-1"
CORP = "ww-corp-1"


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
            await client.transfer("t1", CORP, "a", "b", ["wm-1"], resigned=True)
        with pytest.raises(DependencyUnavailable):
            await client.transfer_results("t1", CORP, "a", "b", resigned=True)
    finally:
        await client.close()
