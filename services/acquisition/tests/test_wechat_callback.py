"""The official account's server callback, driven by requests wechatpy signs and encrypts."""

from __future__ import annotations

import secrets
import time

from nats.aio.client import Client
from wechatpy import parse_message

from acquisition_helpers import (
    Env,
    event_xml,
    open_safe_reply,
    openid,
    plain_post,
    safe_post,
    signed_query,
    text_xml,
)
from closedloop.events.v1 import acquisition_events_pb2 as ev
from loopkit import pii
from loopkit.events import unpack
from loopkit_dev.testing import eventually, read_events


async def _events(nc: Client, env: Env, event_type: str) -> list[ev.TouchRecorded]:
    found = await read_events(
        nc, "ACQUISITION", f"closedloop.acquisition.{event_type}", tenant_id=env.tenant
    )
    return found  # type: ignore[return-value]


async def test_subscribe_in_safe_mode_answers_the_welcome_message_encrypted(env: Env) -> None:
    campaign = await env.campaign()
    await env.qr_channel(campaign.campaign_id, "welcome-1", welcome_message="欢迎关注!")
    query, body = safe_post(event_xml("o-1", "subscribe", key="qrscene_welcome-1"), env.app_id)
    async with env.http() as http:
        answer = await http.post(env.callback(), params=query, content=body)
    assert answer.status_code == 200
    reply = parse_message(open_safe_reply(answer.text, env.app_id))
    assert reply.type == "text"
    assert reply.content == "欢迎关注!"
    assert reply.target == "o-1"


async def test_the_same_event_delivered_three_times_is_one_touch(
    env: Env, nats_client: Client
) -> None:
    campaign = await env.campaign()
    channel = await env.qr_channel(campaign.campaign_id, "retry-1")
    created = int(time.time())
    async with env.http() as http:
        for _ in range(3):  # WeChat retries with a new nonce and signature each time
            query, body = safe_post(
                event_xml("o-retry", "subscribe", key="qrscene_retry-1", create_time=created),
                env.app_id,
            )
            answer = await http.post(env.callback(), params=query, content=body)
            assert answer.status_code == 200
        text = text_xml("o-retry", "hello", msg_id="777001")
        for _ in range(3):
            query, body = safe_post(text, env.app_id)
            answer = await http.post(env.callback(), params=query, content=body)
            assert answer.text == "success"

    async def interactions() -> list[object]:
        return await _events(nats_client, env, "interaction.recorded")  # type: ignore[return-value]

    await eventually(interactions)
    stats = await env.stats(channel.channel_id)
    assert (stats.scans, stats.subscribes) == (1, 1)
    touches = await _events(nats_client, env, "touch.recorded")
    assert len(touches) == 2  # one scan + one subscribe
    (sealed,) = await interactions()
    # The follower's words leave sealed under their data key (loopkit.pii); consumers open them.
    assert pii.is_sealed(unpack(sealed, ev.InteractionRecorded).summary)  # type: ignore[arg-type]
    interaction = unpack(await env.opened(sealed), ev.InteractionRecorded)  # type: ignore[arg-type]
    assert (interaction.kind, interaction.summary, interaction.app_id) == (
        "text",
        "hello",
        env.app_id,
    )


async def test_forged_signature_is_refused_with_no_side_effect(
    env: Env, nats_client: Client
) -> None:
    campaign = await env.campaign()
    channel = await env.qr_channel(campaign.campaign_id, "forged-1")
    xml = event_xml("o-forged", "subscribe", key="qrscene_forged-1")
    async with env.http() as http:
        query, body = plain_post(xml)
        query["signature"] = "0" * 40
        answer = await http.post(env.callback(safe=False), params=query, content=body)
        assert answer.status_code == 403

        query, body = safe_post(xml, env.app_id)
        query["msg_signature"] = "f" * 40
        answer = await http.post(env.callback(), params=query, content=body)
        assert answer.status_code == 403

        bad_echo = {**signed_query(token="wrong-token"), "echostr": "x"}
        answer = await http.get(env.callback(safe=False), params=bad_echo)
        assert answer.status_code == 403

        # A message that did go through afterwards proves the worker ran past the forged ones.
        query, body = plain_post(event_xml("o-real", "SCAN", key="forged-1"))
        answer = await http.post(env.callback(safe=False), params=query, content=body)
        assert answer.status_code == 200

    async def scanned() -> bool:
        return (await env.stats(channel.channel_id)).scans == 1

    await eventually(scanned)
    stats = await env.stats(channel.channel_id)
    assert (stats.scans, stats.subscribes, stats.unique_customers) == (1, 0, 1)
    assert await env.customer_of(openid("o-forged", env.plain_app_id)) is None


async def test_stale_timestamp_is_rejected(env: Env) -> None:
    stale = int(time.time()) - 301
    xml = event_xml("o-stale", "subscribe")
    async with env.http() as http:
        query, body = plain_post(xml, timestamp=stale)
        answer = await http.post(env.callback(safe=False), params=query, content=body)
        assert answer.status_code == 403
        query, body = safe_post(xml, env.app_id, timestamp=stale)
        answer = await http.post(env.callback(), params=query, content=body)
        assert answer.status_code == 403
        assert "timestamp" in answer.json()["error"]


async def test_bad_bodies_and_unknown_apps_are_4xx(env: Env) -> None:
    async with env.http() as http:
        query, _ = plain_post("")
        entity = (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
            b"<xml><FromUserName>&a;</FromUserName></xml>"
        )
        answer = await http.post(env.callback(safe=False), params=query, content=entity)
        assert answer.status_code == 400
        answer = await http.post(
            env.callback(safe=False), params=query, content=b"<xml>" + b"a" * 70_000
        )
        assert answer.status_code == 413
        answer = await http.post(
            env.callback(safe=False), params=query, content=b"<xml><MsgType>text"
        )
        assert answer.status_code == 400
        answer = await http.post(
            env.callback(safe=False),
            params=query,
            content=b"<xml><MsgType>text</MsgType></xml>",
        )
        assert answer.status_code == 400 and answer.json()["field"] == "FromUserName"
        bad_time = event_xml("o-1", "subscribe").replace(
            "<CreateTime>", "<CreateTime>99999999999999999999"
        )
        query, body = plain_post(bad_time)
        answer = await http.post(env.callback(safe=False), params=query, content=body)
        assert answer.status_code == 400 and answer.json()["field"] == "CreateTime"
        answer = await http.post("/v1/wechat/wx-unknown/callback", params=query, content=b"<xml/>")
        assert answer.status_code == 404


async def test_unsubscribe_click_view_and_expired_codes(env: Env, nats_client: Client) -> None:
    campaign = await env.campaign()
    expired = await env.qr_channel(campaign.campaign_id, "old-1", expires_in_s=2)
    async with env.http() as http:
        # The code expired before the scan: WeChat's CreateTime is after the expiry.
        later = int(time.time()) + 120
        query, body = plain_post(
            event_xml("o-late", "subscribe", key="qrscene_old-1", create_time=later)
        )
        assert (
            await http.post(env.callback(safe=False), params=query, content=body)
        ).status_code == 200
        for xml in (
            event_xml("o-late", "CLICK", key="MENU_PRICES"),
            event_xml("o-late", "VIEW", key="https://example.com/shop", create_time=later + 1),
            event_xml("o-late", "unsubscribe", create_time=later + 2),
        ):
            query, body = plain_post(xml)
            answer = await http.post(env.callback(safe=False), params=query, content=body)
            assert answer.text == "success"

    async def touches() -> list[ev.TouchRecorded]:
        found = await read_events(
            nats_client,
            "ACQUISITION",
            "closedloop.acquisition.touch.recorded",
            tenant_id=env.tenant,
        )
        return [unpack(e, ev.TouchRecorded) for e in found]

    async def all_in() -> bool:
        interactions = await read_events(
            nats_client,
            "ACQUISITION",
            "closedloop.acquisition.interaction.recorded",
            tenant_id=env.tenant,
        )
        return len(await touches()) == 3 and len(interactions) == 2

    await eventually(all_in)
    by_kind = {t.kind: t for t in await touches()}
    assert by_kind[ev.TOUCH_KIND_SCAN].expired and by_kind[ev.TOUCH_KIND_SUBSCRIBE].expired
    assert not by_kind[ev.TOUCH_KIND_UNSUBSCRIBE].channel_id
    stats = await env.stats(expired.channel_id)
    assert (stats.scans, stats.subscribes, stats.expired_touches) == (0, 0, 2)


async def test_processing_a_callback_continues_the_callers_trace(
    env: Env, nats_client: Client
) -> None:
    campaign = await env.campaign()
    await env.qr_channel(campaign.campaign_id, "traced-1")
    trace_id = secrets.token_hex(16)
    query, body = safe_post(event_xml("o-traced", "subscribe", key="qrscene_traced-1"), env.app_id)
    async with env.http() as http:
        answer = await http.post(
            env.callback(),
            params=query,
            content=body,
            headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
        )
    assert answer.status_code == 200

    async def touches() -> list[ev.TouchRecorded]:
        return await _events(nats_client, env, "touch.recorded")

    await eventually(touches)
    # Recorded later by the worker, yet in the trace of the request that delivered the message.
    for event in await touches():
        assert event.traceparent.split("-")[1] == trace_id, event.traceparent  # type: ignore[attr-defined]
