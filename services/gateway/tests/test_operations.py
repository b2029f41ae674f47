"""QR codes, contact-me codes, web authorization, external contacts and transfers, through the
gateway's gRPC API to the emulator over HTTP, and what the emulator saw."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import pytest

from closedloop.gateway.v1 import gateway_pb2 as pb
from gateway_helpers import APP, CORP, OTHER_APP, QUOTA_APP, TENANT, Emulator


def _as_browser(url: str, openid: str) -> str:
    """The authorize URL as WeChat's browser opens it, for the emulator's chosen identity."""
    return f"{url.split('#', maxsplit=1)[0]}&emulator_openid={openid}"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def test_qr_code_temporary_and_permanent(stub: Any, wechat: Emulator) -> None:
    scene = _unique("ch")
    temp = await stub.CreateQrCode(
        pb.CreateQrCodeRequest(tenant_id=TENANT, scene_str=scene, expire_seconds=3600)
    )
    assert temp.app_id == APP  # the tenant's default account
    assert temp.ticket and temp.url
    assert temp.HasField("expires_at")
    perm = await stub.CreateQrCode(
        pb.CreateQrCodeRequest(tenant_id=TENANT, app_id=APP, scene_str=scene + "p")
    )
    assert not perm.HasField("expires_at")
    sent = [c["body"] for c in wechat.calls("qrcode/create", APP)]
    assert {"action_name": "QR_STR_SCENE", "scene": scene, "expire": 3600} in [
        {
            "action_name": b["action_name"],
            "scene": b["action_info"]["scene"]["scene_str"],
            "expire": b.get("expire_seconds"),
        }
        for b in sent
    ]
    assert any(
        b["action_name"] == "QR_LIMIT_STR_SCENE"
        and b["action_info"]["scene"]["scene_str"] == scene + "p"
        for b in sent
    )
    # The image URL is the emulator's showqrcode of that ticket: a PNG.
    async with httpx.AsyncClient(trust_env=False) as http:
        image = await http.get(temp.image_url)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"


async def test_qr_code_bad_input_and_wrong_accounts(stub: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.CreateQrCode(pb.CreateQrCodeRequest(tenant_id=TENANT, scene_str=""))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as too_long:
        await stub.CreateQrCode(
            pb.CreateQrCodeRequest(tenant_id=TENANT, scene_str="x", expire_seconds=31 * 86400)
        )
    assert too_long.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await stub.CreateQrCode(
            pb.CreateQrCodeRequest(tenant_id=TENANT, app_id=OTHER_APP, scene_str="x")
        )
    assert foreign.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.CreateQrCode(
            pb.CreateQrCodeRequest(tenant_id=TENANT, app_id="wx-nobody", scene_str="x")
        )
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as no_corp:
        await stub.CreateContactWay(
            pb.CreateContactWayRequest(tenant_id="t-gw-other", state="s", user_ids=["rep"])
        )
    assert no_corp.value.code() == grpc.StatusCode.NOT_FOUND


async def test_contact_way_created_and_deleted(stub: Any, wechat: Emulator) -> None:
    state = _unique("ch")[:30]
    way = await stub.CreateContactWay(
        pb.CreateContactWayRequest(
            tenant_id=TENANT, state=state, user_ids=["rep-li", "rep-wang"], skip_verify=True
        )
    )
    assert way.corp_id == CORP and way.config_id and way.qr_code
    created = [
        c
        for c in wechat.calls("externalcontact/add_contact_way", CORP)
        if c["body"].get("state") == state
    ]
    assert len(created) == 1
    assert created[0]["body"]["user"] == ["rep-li", "rep-wang"]
    assert created[0]["body"]["type"] == 2 and created[0]["body"]["skip_verify"] is True
    await stub.DeleteContactWay(
        pb.DeleteContactWayRequest(tenant_id=TENANT, config_id=way.config_id)
    )
    # Deleting it again: WeCom no longer knows it.
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await stub.DeleteContactWay(
            pb.DeleteContactWayRequest(tenant_id=TENANT, config_id=way.config_id)
        )
    assert gone.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "41044" in (gone.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as no_reps:
        await stub.CreateContactWay(pb.CreateContactWayRequest(tenant_id=TENANT, state="s"))
    assert no_reps.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_oauth_round_trip_gives_verified_openid_and_unionid(
    stub: Any, wechat: Emulator
) -> None:
    openid, unionid = _unique("o"), _unique("u")
    wechat.user(app_id=APP, openid=openid, unionid=unionid)
    built = await stub.BuildOAuthUrl(
        pb.BuildOAuthUrlRequest(
            tenant_id=TENANT,
            redirect_uri="https://h5.example.com/p/page-1?x=1",
            scope=pb.OAUTH_SCOPE_USERINFO,
            state="st-42",
        )
    )
    assert built.app_id == APP
    assert "scope=snsapi_userinfo" in built.url and built.url.startswith(wechat.url)
    # The browser follows the authorize page, which comes back to the page with a code.
    async with httpx.AsyncClient(trust_env=False) as http:
        back = await http.get(_as_browser(built.url, openid))
    assert back.status_code == 302
    target = urlsplit(back.headers["location"])
    assert target.netloc == "h5.example.com" and target.path == "/p/page-1"
    query = parse_qs(target.query)
    assert query["state"] == ["st-42"] and query["x"] == ["1"]
    code = query["code"][0]
    found = await stub.ExchangeOAuthCode(pb.ExchangeOAuthCodeRequest(tenant_id=TENANT, code=code))
    assert (found.app_id, found.openid, found.unionid) == (APP, openid, unionid)
    # A code works once; a made-up one never.
    with pytest.raises(grpc.aio.AioRpcError) as used:
        await stub.ExchangeOAuthCode(pb.ExchangeOAuthCodeRequest(tenant_id=TENANT, code=code))
    assert used.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "40163" in (used.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as forged:
        await stub.ExchangeOAuthCode(pb.ExchangeOAuthCodeRequest(tenant_id=TENANT, code="made-up"))
    assert "40029" in (forged.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as bad_uri:
        await stub.BuildOAuthUrl(
            pb.BuildOAuthUrlRequest(tenant_id=TENANT, redirect_uri="javascript:alert(1)")
        )
    assert bad_uri.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_base_scope_gives_openid_only(stub: Any, wechat: Emulator) -> None:
    openid = _unique("o")
    wechat.user(app_id=APP, openid=openid, unionid=_unique("u"))
    built = await stub.BuildOAuthUrl(
        pb.BuildOAuthUrlRequest(tenant_id=TENANT, redirect_uri="https://h5.example.com/p/2")
    )
    assert "scope=snsapi_base" in built.url
    async with httpx.AsyncClient(trust_env=False) as http:
        back = await http.get(_as_browser(built.url, openid))
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    found = await stub.ExchangeOAuthCode(pb.ExchangeOAuthCodeRequest(tenant_id=TENANT, code=code))
    assert found.openid == openid and found.unionid == ""


async def test_external_contact(stub: Any, wechat: Emulator) -> None:
    external, unionid = _unique("wm"), _unique("u")
    wechat.user(
        corp_id=CORP,
        external_userid=external,
        unionid=unionid,
        name="Li",
        follow_userids=["rep-li"],
    )
    contact = await stub.GetExternalContact(
        pb.GetExternalContactRequest(tenant_id=TENANT, external_userid=external)
    )
    assert (contact.corp_id, contact.external_userid, contact.unionid, contact.name) == (
        CORP,
        external,
        unionid,
        "Li",
    )
    assert contact.type == pb.EXTERNAL_CONTACT_TYPE_WECHAT
    assert list(contact.follow_userids) == ["rep-li"]
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.GetExternalContact(
            pb.GetExternalContactRequest(tenant_id=TENANT, external_userid="wm-nobody")
        )
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_transfers_and_their_result(stub: Any, wechat: Emulator) -> None:
    handover, takeover = _unique("rep"), _unique("rep")
    customers = [_unique("wm"), _unique("wm")]
    answer = await stub.TransferCustomers(
        pb.TransferCustomersRequest(
            tenant_id=TENANT,
            handover_userid=handover,
            takeover_userid=takeover,
            external_userids=customers,
            resigned=True,
            idempotency_key=_unique("k"),
        )
    )
    assert [(c.external_userid, c.errcode) for c in answer.customers] == [(c, 0) for c in customers]
    assert wechat.calls("externalcontact/resigned/transfer_customer", CORP)
    wechat.post(
        "/emulator/transfers", {"corp_id": CORP, "external_userid": customers[0], "status": 1}
    )
    result = await stub.GetTransferResult(
        pb.GetTransferResultRequest(
            tenant_id=TENANT, handover_userid=handover, takeover_userid=takeover, resigned=True
        )
    )
    by_customer = {c.external_userid: c for c in result.customers}
    assert by_customer[customers[0]].status == pb.TRANSFER_STATUS_ACCEPTED
    assert by_customer[customers[0]].HasField("takeover_time")
    assert by_customer[customers[1]].status == pb.TRANSFER_STATUS_WAITING
    # An on-job transfer goes to the on-job API.
    await stub.TransferCustomers(
        pb.TransferCustomersRequest(
            tenant_id=TENANT,
            handover_userid=handover,
            takeover_userid=takeover,
            external_userids=[_unique("wm")],
            transfer_success_msg="Your new rep is Wang",
            idempotency_key=_unique("k"),
        )
    )
    onjob = wechat.calls("externalcontact/transfer_customer", CORP)
    assert onjob[-1]["body"]["transfer_success_msg"] == "Your new rep is Wang"


async def test_a_rate_limit_answer_pauses_the_api_for_a_while_not_the_day(
    stub: Any, wechat: Emulator
) -> None:
    """45011 (too many calls this minute) pauses that API of that account for
    rate_limit_pause_s (60 s), visibly; calls meanwhile are refused without asking WeChat."""
    wechat.fail("qrcode/create", 45011, app_id=QUOTA_APP)
    asked_at = datetime.now(UTC)
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await stub.CreateQrCode(
            pb.CreateQrCodeRequest(tenant_id=TENANT, app_id=QUOTA_APP, scene_str=_unique("s"))
        )
    assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    quota = await stub.GetQuotaStatus(pb.GetQuotaStatusRequest(tenant_id=TENANT, app_id=QUOTA_APP))
    qr = {q.api: q for q in quota.apis}["qrcode/create"]
    assert qr.paused_errcode == 45011
    until = qr.paused_until.ToDatetime(tzinfo=UTC)
    assert asked_at < until <= datetime.now(UTC) + timedelta(seconds=61)
    calls = len(wechat.calls("qrcode/create", QUOTA_APP))
    with pytest.raises(grpc.aio.AioRpcError) as still:
        await stub.CreateQrCode(
            pb.CreateQrCodeRequest(tenant_id=TENANT, app_id=QUOTA_APP, scene_str=_unique("s"))
        )
    assert still.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(wechat.calls("qrcode/create", QUOTA_APP)) == calls
