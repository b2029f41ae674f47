"""WeChat callback crypto and XML, checked against wechatpy as an independent implementation."""

from __future__ import annotations

import time

import pytest
from wechatpy.crypto import WeChatCrypto
from wechatpy.enterprise.crypto import WeChatCrypto as WeComCrypto

from loopkit.customers import IdentityValue
from loopkit.wechat import crypto, xml
from loopkit.wechat.sender import OutboundMessage, SandboxSender, SendRefused

TOKEN = "spamtest"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wx1234567890abcdef"


def now() -> str:
    return str(int(time.time()))


def test_url_signature_accepts_the_real_scheme_and_refuses_forgeries() -> None:
    ts = now()
    good = crypto.signature(TOKEN, ts, "nonce1")
    crypto.check_signature(TOKEN, good, ts, "nonce1")
    with pytest.raises(crypto.SignatureError, match="does not match"):
        crypto.check_signature(TOKEN, "0" * 40, ts, "nonce1")
    with pytest.raises(crypto.SignatureError, match="does not match"):
        crypto.check_signature("another-token", good, ts, "nonce1")


def test_a_stale_or_future_timestamp_is_refused_even_when_correctly_signed() -> None:
    old = str(int(time.time()) - 301)
    with pytest.raises(crypto.SignatureError, match="300 s"):
        crypto.check_signature(TOKEN, crypto.signature(TOKEN, old, "n"), old, "n")
    future = str(int(time.time()) + 301)
    with pytest.raises(crypto.SignatureError):
        crypto.check_signature(TOKEN, crypto.signature(TOKEN, future, "n"), future, "n")


def test_messages_wechatpy_encrypts_open_here_and_ours_open_there() -> None:
    ours = crypto.MessageCrypto(TOKEN, AES_KEY, APP_ID)
    theirs = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    body = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Content>你好</Content></xml>"
    ts, nonce = now(), "abc"
    sealed = theirs.encrypt_message(body, nonce, ts)
    fields = xml.parse_message(sealed.encode())
    opened = ours.open(fields["MsgSignature"], ts, nonce, fields["Encrypt"])
    assert opened.decode() == body

    reply = xml.build_message(ours.seal("<xml><Content>回复</Content></xml>".encode(), ts, nonce))
    assert theirs.decrypt_message(reply, fields_signature(reply), ts, nonce) == (
        "<xml><Content>回复</Content></xml>"
    )


def fields_signature(reply: str) -> str:
    return xml.parse_message(reply.encode())["MsgSignature"]


def test_wecom_ciphertext_is_bound_to_its_corp_id() -> None:
    corp = WeComCrypto(TOKEN, AES_KEY, "ww-corp-1")
    ts, nonce = now(), "n2"
    sealed = xml.parse_message(corp.encrypt_message("<xml><A>1</A></xml>", nonce, ts).encode())
    assert (
        crypto.MessageCrypto(TOKEN, AES_KEY, "ww-corp-1").open(
            sealed["MsgSignature"], ts, nonce, sealed["Encrypt"]
        )
        == b"<xml><A>1</A></xml>"
    )
    with pytest.raises(crypto.DecryptError, match="another receiver"):
        crypto.MessageCrypto(TOKEN, AES_KEY, "ww-corp-2").open(
            sealed["MsgSignature"], ts, nonce, sealed["Encrypt"]
        )


def test_tampered_ciphertext_fails_the_signature_before_any_decryption() -> None:
    ours = crypto.MessageCrypto(TOKEN, AES_KEY, APP_ID)
    ts = now()
    sealed = ours.seal(b"<xml/>", ts, "n")
    first = sealed["Encrypt"][0]
    tampered = ("B" if first == "A" else "A") + sealed["Encrypt"][1:]
    with pytest.raises(crypto.SignatureError):
        ours.open(sealed["MsgSignature"], ts, "n", tampered)
    with pytest.raises(crypto.DecryptError):
        ours.decrypt("not base64 !!")


def test_xml_refuses_entities_oversize_and_foreign_roots() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><xml><C>&b;</C></xml>'
    )
    with pytest.raises(xml.XmlError):
        xml.parse_message(bomb)
    with pytest.raises(xml.XmlError, match="larger than"):
        xml.parse_message(b"<xml><C>" + b"a" * 70_000 + b"</C></xml>")
    with pytest.raises(xml.XmlError, match="root"):
        xml.parse_message(b"<html></html>")
    with pytest.raises(xml.XmlError, match="malformed"):
        xml.parse_message(b"<xml><C>")


def test_built_messages_survive_cdata_terminators_in_values() -> None:
    text = xml.build_message({"Content": "a]]>b", "CreateTime": 1700000000})
    assert xml.parse_message(text.encode()) == {"Content": "a]]>b", "CreateTime": "1700000000"}


async def test_sandbox_sender_records_once_per_key_and_refuses_reused_welcome_codes() -> None:
    sender = SandboxSender()
    who = IdentityValue("wecom_external_userid", "wm1", scope="ww1")
    msg = OutboundMessage("t1", "c1", who, "welcome", "hi", {"welcome_code": "W1"}, key="k1")
    first = await sender.send(msg)
    again = await sender.send(msg)
    assert again.duplicate and again.message_id == first.message_id
    assert len(sender.sent) == 1
    with pytest.raises(SendRefused, match="already used"):
        await sender.send(OutboundMessage("t1", "c1", who, "welcome", "hi", {"welcome_code": "W1"}))


def test_a_signed_timestamp_of_hundreds_of_digits_is_refused_not_a_crash() -> None:
    huge = "9" * 400
    with pytest.raises(crypto.SignatureError, match="300 s"):
        crypto.check_signature(TOKEN, crypto.signature(TOKEN, huge, "n"), huge, "n")


@pytest.mark.parametrize("encoding", ["gbk", "GB2312", "big5", "utf-16", "x-made-up"])
def test_a_declared_encoding_other_than_utf8_is_refused(encoding: str) -> None:
    body = f'<?xml version="1.0" encoding="{encoding}"?><xml><A>1</A></xml>'.encode()
    with pytest.raises(xml.XmlError, match="unsupported encoding"):
        xml.parse_message(body)
    # Behind a byte-order mark the declaration is still never handed to expat unchecked.
    with pytest.raises(xml.XmlError):
        xml.parse_message(b"\xef\xbb\xbf" + body)
    declared = b'<?xml version="1.0" encoding="UTF-8"?><xml><A>1</A></xml>'
    assert xml.parse_message(declared) == {"A": "1"}
