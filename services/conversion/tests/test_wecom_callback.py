"""The WeCom contact callback: friendships as company assets, welcome messages, forgeries."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from closedloop.common.v1 import common_pb2 as c
from closedloop.conversion.v1 import conversion_pb2 as pb
from closedloop.events.v1 import conversion_events_pb2 as ev
from closedloop.identity.v1 import identity_pb2 as ipb
from conversion_helpers import (
    CORP,
    CRYPTO,
    TOKEN,
    contact_change,
    events,
    external,
    make_rep,
    post_callback,
    signed_callback,
)
from loopkit.events import unpack
from loopkit.wechat.crypto import signature
from loopkit_dev.testing import eventually


async def _ownerships(stub, tenant, **kw) -> list[pb.Ownership]:
    answer = await stub.ListOwnerships(pb.ListOwnershipsRequest(tenant_id=tenant, **kw))
    return list(answer.ownerships)


async def test_add_contact_creates_one_ownership_linked_in_identity(
    stub, identity_stub, conversion, tenant, nats_client
):
    rep = await make_rep(stub, tenant, "zhangsan")
    await stub.SetContactWay(
        pb.SetContactWayRequest(tenant_id=tenant, state="expo-2026", channel_id="ch-expo")
    )
    fields = contact_change("add_external_contact", "zhangsan", "wm-ext-1", state="expo-2026")
    # WeCom delivers the same callback three times when it does not hear back in time.
    for _ in range(3):
        answer = await post_callback(conversion.http_url, fields)
        assert answer.status_code == 200 and answer.text == "success"
    [own] = await _ownerships(stub, tenant, include_ended=True)
    assert (own.rep_id, own.channel_id, own.state) == (rep.rep_id, "ch-expo", "expo-2026")
    assert own.status == pb.OWNERSHIP_STATUS_ACTIVE and own.external_userid == "wm-ext-1"
    # The external_userid is linked to the same customer in identity.
    resolved = await identity_stub.ResolveCustomer(
        ipb.ResolveCustomerRequest(tenant_id=tenant, identities=[external("wm-ext-1")])
    )
    assert resolved.customer.customer_id == own.customer_id and not resolved.created
    # Enriched with the unionid, a friend-add joins the customer the official account knows.
    follower = await identity_stub.ResolveCustomer(
        ipb.ResolveCustomerRequest(
            tenant_id=tenant,
            identities=[c.Identity(kind=c.IDENTITY_KIND_WECHAT_UNIONID, value="union-9")],
        )
    )
    enriched = contact_change("add_external_contact", "zhangsan", "wm-ext-2")
    enriched["UnionId"] = "union-9"
    assert (await post_callback(conversion.http_url, enriched)).status_code == 200
    owned = {o.external_userid: o for o in await _ownerships(stub, tenant)}
    assert owned["wm-ext-2"].customer_id == follower.customer.customer_id

    async def started():
        return await events(nats_client, tenant, "ownership.started")

    await eventually(started)
    await eventually(lambda: _at_least(started, 2))
    event = (await started())[0]
    payload = unpack(event, ev.OwnershipStarted)
    assert event.customer_id == own.customer_id
    assert (payload.rep_id, payload.channel_id, payload.external_contact.scope) == (
        rep.rep_id,
        "ch-expo",
        CORP,
    )


@pytest.mark.parametrize("conversion", ["sqlite"], indirect=True)
async def test_forged_and_stale_callbacks_are_refused_and_store_nothing(stub, conversion, tenant):
    await make_rep(stub, tenant, "lisi")
    fields = contact_change("add_external_contact", "lisi", "wm-forged")
    forged = await post_callback(conversion.http_url, fields, token="not-the-token")
    assert forged.status_code == 403
    stale = await post_callback(conversion.http_url, fields, timestamp=int(time.time()) - 3600)
    assert stale.status_code == 403
    params, body = signed_callback(fields)
    async with httpx.AsyncClient(base_url=conversion.http_url) as client:
        tampered = await client.post(
            f"/v1/wecom/{CORP}/callback",
            params={**params, "msg_signature": "0" * 40},
            content=body,
        )
        unknown = await client.post("/v1/wecom/ww-unknown/callback", params=params, content=body)
        garbage = await client.post(
            f"/v1/wecom/{CORP}/callback", params=params, content=b"<xml><Encrypt>"
        )
    assert tampered.status_code == 403
    assert unknown.status_code == 404
    assert garbage.status_code == 400
    assert await _ownerships(stub, tenant, include_ended=True) == []


@pytest.mark.parametrize("conversion", ["sqlite"], indirect=True)
async def test_url_verification_echoes_the_decrypted_echostr(conversion):
    echostr = CRYPTO.encrypt(b"echo-12345")
    ts, nonce = str(int(time.time())), "n1"
    params = {
        "msg_signature": signature(TOKEN, ts, nonce, echostr),
        "timestamp": ts,
        "nonce": nonce,
        "echostr": echostr,
    }
    async with httpx.AsyncClient(base_url=conversion.http_url) as client:
        ok = await client.get(f"/v1/wecom/{CORP}/callback", params=params)
        bad = await client.get(
            f"/v1/wecom/{CORP}/callback", params={**params, "msg_signature": "f" * 40}
        )
    assert ok.status_code == 200 and ok.text == "echo-12345"
    assert bad.status_code == 403


@pytest.mark.parametrize("conversion", ["sqlite"], indirect=True)
async def test_welcome_message_is_sent_once_within_the_window(
    stub, conversion, tenant, tmp_path: Path
):
    await make_rep(stub, tenant, "wangwu")
    await stub.SetContactWay(
        pb.SetContactWayRequest(
            tenant_id=tenant, state="poster", channel_id="ch-poster", welcome_text="Hi! 欢迎"
        )
    )
    fields = contact_change(
        "add_external_contact", "wangwu", "wm-ext-w", state="poster", welcome_code="WC-1"
    )
    for _ in range(2):
        assert (await post_callback(conversion.http_url, fields)).status_code == 200

    async def welcomed():
        [own] = await _ownerships(stub, tenant)
        return own if own.welcome_status == "sent" else None

    await eventually(welcomed)
    own = await welcomed()
    assert own is not None and 0 <= own.welcome_latency_ms < 20_000
    sent = [json.loads(line) for line in (tmp_path / "sent.jsonl").read_text().splitlines()]
    assert len(sent) == 1
    assert sent[0]["kind"] == "welcome" and sent[0]["content"] == "Hi! 欢迎"
    assert sent[0]["params"] == {"welcome_code": "WC-1", "sender": "wangwu"}
    assert sent[0]["recipient"]["value"] == "wm-ext-w"

    # A friend-add WeCom reports late: its code has expired, so nothing is sent.
    late = contact_change(
        "add_external_contact",
        "wangwu",
        "wm-ext-late",
        state="poster",
        welcome_code="WC-2",
        create_time=int(time.time()) - 60,
    )
    assert (await post_callback(conversion.http_url, late)).status_code == 200

    async def expired():
        owned = {o.external_userid: o for o in await _ownerships(stub, tenant)}
        return owned["wm-ext-late"].welcome_status == "expired"

    await eventually(expired)
    assert len((tmp_path / "sent.jsonl").read_text().splitlines()) == 1


async def test_deletions_end_the_friendship_with_their_reason(
    stub, conversion, tenant, nats_client
):
    rep = await make_rep(stub, tenant, "zhaoliu")
    for ext in ("wm-a", "wm-b"):
        fields = contact_change("add_external_contact", "zhaoliu", ext)
        assert (await post_callback(conversion.http_url, fields)).status_code == 200
    later = int(time.time()) + 1
    await post_callback(
        conversion.http_url,
        contact_change("del_external_contact", "zhaoliu", "wm-a", create_time=later),
    )
    await post_callback(
        conversion.http_url,
        contact_change("del_follow_user", "zhaoliu", "wm-b", create_time=later),
    )
    await post_callback(
        conversion.http_url,
        contact_change("edit_external_contact", "zhaoliu", "wm-b", create_time=later + 1),
    )
    owned = {o.external_userid: o for o in await _ownerships(stub, tenant, include_ended=True)}
    assert owned["wm-a"].end_reason == ev.OWNERSHIP_END_REASON_REP_DELETED_CUSTOMER
    assert owned["wm-b"].end_reason == ev.OWNERSHIP_END_REASON_CUSTOMER_DELETED_REP
    assert all(o.status == pb.OWNERSHIP_STATUS_ENDED for o in owned.values())

    async def ended():
        return await events(nats_client, tenant, "ownership.ended")

    await eventually(lambda: _at_least(ended, 2))
    reasons = {unpack(e, ev.OwnershipEnded).reason for e in await ended()}
    assert reasons == {
        ev.OWNERSHIP_END_REASON_REP_DELETED_CUSTOMER,
        ev.OWNERSHIP_END_REASON_CUSTOMER_DELETED_REP,
    }
    report = await stub.GetRepReport(pb.GetRepReportRequest(tenant_id=tenant, rep_id=rep.rep_id))
    [figures] = report.reps
    assert (figures.new_friends, figures.deleted_by_customer, figures.customers_owned) == (2, 1, 0)


async def _at_least(fetch, n: int) -> bool:
    return len(await fetch()) >= n
