"""Conversion wired to the real gateway and the WeChat emulator: friend-adds joined to the
official account's follower through WeCom's own unionid, the welcome message, and transfers that
WeCom carries out (asked through the gateway, the result read back)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

import closedloop_gateway.main
from closedloop.common.v1 import common_pb2 as c
from closedloop.conversion.v1 import conversion_pb2 as pb
from closedloop.conversion.v1 import conversion_pb2_grpc
from closedloop.events.v1 import conversion_events_pb2 as ev
from closedloop.gateway.v1 import gateway_pb2 as gw
from closedloop.gateway.v1 import gateway_pb2_grpc
from closedloop.identity.v1 import identity_pb2 as ipb
from closedloop_conversion.main import DEFINITION
from closedloop_conversion.models import RepNoticeRow
from conversion_helpers import (
    AGENT_ID,
    AGENT_SECRET,
    CORP,
    accounts,
    contact_change,
    events,
    lead_envelope,
    make_rep,
    offered,
    post_callback,
    publish,
)
from gateway_helpers import Emulator, emulator, gateway_overrides
from loopkit.events import new_envelope, unpack
from loopkit_dev.natsserver import NatsServer, free_port
from loopkit_dev.testing import BUSY_MACHINE_DEADLINE_S, RunningService, eventually, running_service

APP = "wx-conv-oa"


@pytest.fixture(scope="module")
def wechat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The WeChat API emulator, as its own process over HTTP."""
    with emulator(tmp_path_factory.mktemp("emulator")) as running:
        # The corp's application: its agent secret gets the token message/send takes.
        running.post(
            "/emulator/apps", {"corp_id": CORP, "agent_id": AGENT_ID, "secret": AGENT_SECRET}
        )
        yield running


def _accounts(tenant: str) -> str:
    """One registry for the gateway (secrets) and conversion (the corp's callback settings),
    the corp with its application, so reps are told of their tasks and leads."""
    oa = {"tenant_id": tenant, "app_id": APP, "app_secret": "conv-oa-4d1e"}
    return accounts(tenant, oa, app=True)


@pytest_asyncio.fixture(loop_scope="session")
async def gateway(
    nats_server: NatsServer, wechat: Emulator, tenant: str, tmp_path: Path
) -> AsyncIterator[RunningService]:
    """The real gateway in this process, holding the test tenant's account and corp."""
    state = tmp_path / "gateway"
    state.mkdir()
    async with running_service(
        closedloop_gateway.main.DEFINITION,
        database_url=f"sqlite+aiosqlite:///{state}/gateway.db",
        nats_url=nats_server.url,
        state_dir=state,
        **{**gateway_overrides(wechat.url), "accounts": _accounts(tenant)},
    ) as svc:
        yield svc


def _conversion_settings(tenant: str, gateway_url: str) -> dict[str, Any]:
    return {
        "accounts": _accounts(tenant),
        "gateway_url": gateway_url,
        "gateway_timeout_s": BUSY_MACHINE_DEADLINE_S,
        "transfer_sweep_interval_s": 0.2,
        "shutdown_grace_s": 0.5,
    }


@pytest_asyncio.fixture(loop_scope="session", params=["sqlite", "postgres"])
async def wired(  # noqa: PLR0917 - fixtures
    request: pytest.FixtureRequest,
    nats_server: NatsServer,
    identity: RunningService,
    gateway: RunningService,
    tenant: str,
    tmp_path: Path,
) -> AsyncIterator[RunningService]:
    """Conversion on SQLite and PostgreSQL with the gateway instead of the sandbox sender."""
    if request.param == "postgres":
        database = await request.getfixturevalue("postgres").fresh_database()
    else:
        database = f"sqlite+aiosqlite:///{tmp_path}/conversion.db"
    async with running_service(
        DEFINITION,
        database_url=database,
        nats_url=nats_server.url,
        state_dir=tmp_path,
        identity_url=identity.grpc_target,
        **_conversion_settings(tenant, gateway.grpc_target),
    ) as svc:
        yield svc


@pytest.fixture
def conv(wired: RunningService) -> conversion_pb2_grpc.ConversionServiceStub:
    return conversion_pb2_grpc.ConversionServiceStub(wired.channel)  # type: ignore[no-untyped-call]


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def _ownerships(conv: Any, tenant: str) -> list[pb.Ownership]:
    answer = await conv.ListOwnerships(
        pb.ListOwnershipsRequest(tenant_id=tenant, include_ended=True)
    )
    return list(answer.ownerships)


async def _follower(identity_stub: Any, tenant: str, openid: str, unionid: str) -> str:
    """The official account's follower as acquisition records it from a signed callback."""
    answer = await identity_stub.ResolveCustomer(
        ipb.ResolveCustomerRequest(
            tenant_id=tenant,
            identities=[
                c.Identity(
                    kind=c.IDENTITY_KIND_WECHAT_OPENID, scope=APP, value=openid, verified=True
                ),
                c.Identity(kind=c.IDENTITY_KIND_WECHAT_UNIONID, value=unionid, verified=True),
            ],
        )
    )
    return str(answer.customer.customer_id)


async def test_a_friend_add_joins_the_follower_through_wecoms_unionid(
    conv, wired, identity_stub, wechat, tenant
):
    await make_rep(conv, tenant, "zhangsan")
    openid, unionid, ext = _unique("o"), _unique("union"), _unique("wm")
    follower = await _follower(identity_stub, tenant, openid, unionid)
    # WeCom knows the contact's unionid; the callback itself carries none.
    wechat.user(corp_id=CORP, external_userid=ext, unionid=unionid, follow_userids=["zhangsan"])
    answer = await post_callback(
        wired.http_url, contact_change("add_external_contact", "zhangsan", ext)
    )
    assert answer.status_code == 200, answer.text

    [own] = await _ownerships(conv, tenant)
    assert own.customer_id == follower  # one customer: the fan and the WeCom friend
    found = await identity_stub.ListIdentities(
        ipb.ListIdentitiesRequest(tenant_id=tenant, customer_id=follower)
    )
    verified = {(i.kind, i.value): i.verified for i in found.identities}
    assert (c.IDENTITY_KIND_WECOM_EXTERNAL_USERID, ext) in verified
    assert verified[(c.IDENTITY_KIND_WECHAT_UNIONID, unionid)] is True
    # It came from WeCom: the gateway asked externalcontact/get for this contact.
    asked = wechat.calls("externalcontact/get", CORP)
    assert ext in [call["body"].get("external_userid") for call in asked]


async def test_a_contact_wecom_does_not_know_keeps_the_callbacks_data(
    conv, wired, identity_stub, tenant
):
    await make_rep(conv, tenant, "lisi")
    ext = _unique("wm-unknown")
    answer = await post_callback(
        wired.http_url, contact_change("add_external_contact", "lisi", ext)
    )
    assert answer.status_code == 200
    [own] = await _ownerships(conv, tenant)
    found = await identity_stub.ListIdentities(
        ipb.ListIdentitiesRequest(tenant_id=tenant, customer_id=own.customer_id)
    )
    assert [i.kind for i in found.identities] == [c.IDENTITY_KIND_WECOM_EXTERNAL_USERID]


async def test_an_unreachable_gateway_has_wecom_retry_the_friend_add(
    nats_server, identity, identity_stub, tenant, tmp_path
):
    """No gateway, no answer: 503 so WeCom calls back again; nothing recorded half-way."""
    async with running_service(
        DEFINITION,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/conversion.db",
        nats_url=nats_server.url,
        state_dir=tmp_path,
        identity_url=identity.grpc_target,
        **{**_conversion_settings(tenant, f"127.0.0.1:{free_port()}"), "gateway_timeout_s": 2.0},
    ) as svc:
        conv = conversion_pb2_grpc.ConversionServiceStub(svc.channel)  # type: ignore[no-untyped-call]
        await make_rep(conv, tenant, "wangwu")
        fields = contact_change("add_external_contact", "wangwu", _unique("wm"))
        answer = await post_callback(svc.http_url, fields)
        assert answer.status_code == 503
        assert "gateway" in answer.json()["error"]
        assert await _ownerships(conv, tenant) == []


async def test_the_welcome_message_goes_out_through_wecom_with_the_callbacks_code(
    conv, wired, wechat, tenant
):
    await make_rep(conv, tenant, "zhaoliu")
    state = _unique("expo")
    await conv.SetContactWay(
        pb.SetContactWayRequest(
            tenant_id=tenant, state=state, channel_id="ch-expo", welcome_text="Welcome to the expo"
        )
    )
    ext, code = _unique("wm"), _unique("WELCOME")
    fields = contact_change("add_external_contact", "zhaoliu", ext, state=state, welcome_code=code)
    # WeCom delivers the callback three times when it does not hear back in time.
    for _ in range(3):
        assert (await post_callback(wired.http_url, fields)).status_code == 200

    async def welcomed() -> list[dict[str, Any]]:
        return [
            call
            for call in wechat.calls("externalcontact/send_welcome_msg", CORP)
            if call["body"].get("welcome_code") == code
        ]

    await eventually(welcomed)
    [call] = await welcomed()
    assert call["body"]["text"]["content"] == "Welcome to the expo"

    async def recorded() -> str:
        [own] = await _ownerships(conv, tenant)
        return own.welcome_status if own.welcome_status != "pending" else ""

    await eventually(recorded)
    assert await recorded() == "sent"
    assert len(await welcomed()) == 1  # sent once

    # A second friend-add presenting the same (now used) code: WeCom refuses it, and it shows.
    again = contact_change("add_external_contact", "zhaoliu", _unique("wm"), state=state)
    again["WelcomeCode"] = code
    assert (await post_callback(wired.http_url, again)).status_code == 200

    async def refused() -> bool:
        return any(o.welcome_status == "refused" for o in await _ownerships(conv, tenant))

    await eventually(refused)


async def _befriend(wired: RunningService, conv: Any, tenant: str, user: str) -> pb.Ownership:
    ext = _unique("wm")
    answer = await post_callback(wired.http_url, contact_change("add_external_contact", user, ext))
    assert answer.status_code == 200
    return next(o for o in await _ownerships(conv, tenant) if o.external_userid == ext)


async def _transfers(conv: Any, tenant: str) -> dict[str, pb.CustomerTransfer]:
    answer = await conv.ListTransfers(pb.ListTransfersRequest(tenant_id=tenant))
    return {t.customer_id: t for t in answer.transfers}


def _asked(wechat: Emulator, api: str, ext: str) -> list[dict[str, Any]]:
    return [c for c in wechat.calls(api, CORP) if ext in c["body"].get("external_userid", [])]


async def test_an_on_job_transfer_is_asked_of_wecom_and_done_when_wecom_says_so(
    conv, wired, wechat, tenant, nats_client
):
    a = await make_rep(conv, tenant, "rep-a")
    b = await make_rep(conv, tenant, "rep-b")
    moved = await _befriend(wired, conv, tenant, "rep-a")
    stays = await _befriend(wired, conv, tenant, "rep-a")
    await conv.TransferCustomers(
        pb.TransferCustomersRequest(
            tenant_id=tenant,
            from_rep_id=a.rep_id,
            to_rep_id=b.rep_id,
            customer_ids=[moved.customer_id, stays.customer_id],
        )
    )
    # WeCom is asked (on-job API) with the reps' WeCom ids.
    await eventually(
        lambda: _async(_asked(wechat, "externalcontact/transfer_customer", moved.external_userid))
    )
    [call] = _asked(wechat, "externalcontact/transfer_customer", moved.external_userid)
    assert (call["body"]["handover_userid"], call["body"]["takeover_userid"]) == ("rep-a", "rep-b")
    # Until WeCom reports the takeover, the customer keeps the former rep.
    pending = await _transfers(conv, tenant)
    assert pending[moved.customer_id].status == pb.TRANSFER_STATUS_PENDING

    # The customer accepts; the other one refuses.
    for ext, status in ((moved.external_userid, 1), (stays.external_userid, 3)):
        wechat.post(
            "/emulator/transfers", {"corp_id": CORP, "external_userid": ext, "status": status}
        )

    async def settled() -> bool:
        found = await _transfers(conv, tenant)
        return all(t.status != pb.TRANSFER_STATUS_PENDING for t in found.values())

    await eventually(settled)
    found = await _transfers(conv, tenant)
    assert found[moved.customer_id].status == pb.TRANSFER_STATUS_COMPLETED
    assert found[stays.customer_id].status == pb.TRANSFER_STATUS_REFUSED
    assert "refused" in found[stays.customer_id].reason
    active = {o.customer_id: o.rep_id for o in await _ownerships(conv, tenant) if o.status == 1}
    assert active == {moved.customer_id: b.rep_id, stays.customer_id: a.rep_id}
    # WeCom's result was read back (transfer_result), and the move published once.
    assert wechat.calls("externalcontact/transfer_result", CORP)

    async def transferred() -> list[Any]:
        return await events(nats_client, tenant, "ownership.transferred")

    await eventually(transferred)
    [event] = await transferred()
    payload = unpack(event, ev.OwnershipTransferred)
    assert (event.customer_id, payload.to_rep_id) == (moved.customer_id, b.rep_id)


async def test_a_departed_reps_customers_go_through_wecoms_resigned_transfer(
    conv, wired, wechat, tenant
):
    leaving = await make_rep(conv, tenant, "leaving")
    heir = await make_rep(conv, tenant, "heir")
    own = await _befriend(wired, conv, tenant, "leaving")
    await conv.UpdateRep(
        pb.UpdateRepRequest(tenant_id=tenant, rep_id=leaving.rep_id, status=pb.REP_STATUS_DEPARTED)
    )
    await conv.TransferCustomers(
        pb.TransferCustomersRequest(
            tenant_id=tenant, from_rep_id=leaving.rep_id, to_rep_id=heir.rep_id
        )
    )
    api = "externalcontact/resigned/transfer_customer"
    await eventually(lambda: _async(_asked(wechat, api, own.external_userid)))
    wechat.post(
        "/emulator/transfers",
        {"corp_id": CORP, "external_userid": own.external_userid, "status": 1},
    )

    async def completed() -> bool:
        found = await _transfers(conv, tenant)
        return found[own.customer_id].status == pb.TRANSFER_STATUS_COMPLETED

    await eventually(completed)
    active = [o for o in await _ownerships(conv, tenant) if o.status == 1]
    assert [(o.customer_id, o.rep_id) for o in active] == [(own.customer_id, heir.rep_id)]


async def test_a_customer_already_in_transfer_at_wecom_is_in_progress_not_refused(
    conv, wired, gateway, wechat, tenant
):
    """Someone started the same transfer in WeCom already (its console, an earlier request):
    WeCom refuses the customer with 40129, which the gateway answers as accepted for transfer,
    so conversion's transfer stays pending and completes when WeCom reports the takeover."""
    a = await make_rep(conv, tenant, "rep-c")
    b = await make_rep(conv, tenant, "rep-d")
    own = await _befriend(wired, conv, tenant, "rep-c")
    earlier = gw.TransferCustomersRequest(
        tenant_id=tenant,
        corp_id=CORP,
        handover_userid="rep-c",
        takeover_userid="rep-d",
        external_userids=[own.external_userid],
        idempotency_key=_unique("console"),
    )
    stub = gateway_pb2_grpc.GatewayServiceStub(gateway.channel)  # type: ignore[no-untyped-call]
    await stub.TransferCustomers(earlier)
    await conv.TransferCustomers(
        pb.TransferCustomersRequest(
            tenant_id=tenant,
            from_rep_id=a.rep_id,
            to_rep_id=b.rep_id,
            customer_ids=[own.customer_id],
        )
    )
    api = "externalcontact/transfer_customer"
    await eventually(lambda: _async(len(_asked(wechat, api, own.external_userid)) == 2))
    found = await _transfers(conv, tenant)
    assert found[own.customer_id].status == pb.TRANSFER_STATUS_PENDING
    wechat.post(
        "/emulator/transfers",
        {"corp_id": CORP, "external_userid": own.external_userid, "status": 1},
    )

    async def completed() -> bool:
        found = await _transfers(conv, tenant)
        return found[own.customer_id].status == pb.TRANSFER_STATUS_COMPLETED

    await eventually(completed)


async def _async(value: Any) -> Any:
    return value


async def test_a_transfer_whose_answer_was_lost_is_not_asked_of_wecom_twice(
    conv, wired, wechat, tenant
):
    """WeCom takes the request but answers after the gateway stopped waiting (10 s): the sweeper
    asks again under the same key, the gateway finds the customer in WeCom's transfer_result,
    and the transfer stays pending (not failed as "already in transfer") until WeCom completes."""
    leaving = await make_rep(conv, tenant, "gone")
    heir = await make_rep(conv, tenant, "next")
    own = await _befriend(wired, conv, tenant, "gone")
    await conv.UpdateRep(
        pb.UpdateRepRequest(tenant_id=tenant, rep_id=leaving.rep_id, status=pb.REP_STATUS_DEPARTED)
    )
    api = "externalcontact/resigned/transfer_customer"
    result_api = "externalcontact/resigned/transfer_result"
    read_before = len(wechat.calls(result_api, CORP))
    wechat.post(
        "/emulator/fail", {"api": api, "errcode": 0, "count": 1, "corp_id": CORP, "delay_s": 12}
    )
    await conv.TransferCustomers(
        pb.TransferCustomersRequest(
            tenant_id=tenant, from_rep_id=leaving.rep_id, to_rep_id=heir.rep_id
        )
    )
    # The retry (after the gateway gave up on the first answer) reads WeCom's record.
    await eventually(
        lambda: _async(len(wechat.calls(result_api, CORP)) > read_before), timeout_s=60
    )

    async def still_pending() -> bool:
        found = await _transfers(conv, tenant)
        return found[own.customer_id].status == pb.TRANSFER_STATUS_PENDING

    assert await still_pending()
    wechat.post(
        "/emulator/transfers",
        {"corp_id": CORP, "external_userid": own.external_userid, "status": 1},
    )

    async def completed() -> bool:
        found = await _transfers(conv, tenant)
        return found[own.customer_id].status == pb.TRANSFER_STATUS_COMPLETED

    await eventually(completed)
    assert len(_asked(wechat, api, own.external_userid)) == 1


async def test_a_win_back_task_and_an_assigned_lead_tell_the_rep_once_through_wecom(
    conv, wechat, tenant, nats_client
) -> None:
    userid = _unique("rep-notified")
    rep = await make_rep(conv, tenant, userid)
    env = offered(tenant, "cust-notice-1", rep.rep_id)
    await publish(nats_client, env)
    await publish(nats_client, env, dedupe=False)  # redelivered: still one task, one message

    async def told() -> pb.RepTask | None:
        found = await conv.ListRepTasks(pb.ListRepTasksRequest(tenant_id=tenant))
        if found.tasks and found.tasks[0].rep_notice == pb.REP_NOTICE_STATUS_SENT:
            return found.tasks[0]
        return None

    await eventually(told, timeout_s=BUSY_MACHINE_DEADLINE_S)
    task = await told()
    assert task is not None and not task.rep_notice_detail

    def to_rep() -> list[dict[str, Any]]:
        calls = wechat.calls("message/send", CORP)
        return [c for c in calls if c["body"].get("touser") == userid and c["errcode"] == 0]

    first = to_rep()
    assert len(first) == 1, first
    assert first[0]["body"]["agentid"] == int(AGENT_ID)
    text = first[0]["body"]["text"]["content"]
    assert text.startswith("New task: Win back customer cust-notice-1")
    assert "phone" not in text.lower()

    # A lead assigned to the rep (the tenant's only one) is a second message, and only that.
    lead_id = _unique("lead-notice")
    await publish(nats_client, lead_envelope(tenant, "cust-notice-2", lead_id=lead_id))

    async def two() -> bool:
        return len(to_rep()) == 2

    await eventually(two, timeout_s=BUSY_MACHINE_DEADLINE_S)
    assert lead_id in to_rep()[1]["body"]["text"]["content"]
    assert len(to_rep()) == 2


async def test_leads_assigned_together_tell_each_rep_once_per_lead(
    conv, wechat, tenant, nats_client
) -> None:
    """A fetched batch's notices are stored together, with its assignments: every lead of a
    burst is one message to the rep it went to, and a lead.assigned seen again is no second."""
    users = [_unique("rep-burst"), _unique("rep-burst")]
    for user in users:
        await make_rep(conv, tenant, user)
    leads = [_unique("lead-burst") for _ in range(6)]
    for n, lead_id in enumerate(leads):
        await publish(nats_client, lead_envelope(tenant, f"cust-burst-{n}", lead_id=lead_id))

    async def assigned() -> list[Any]:
        found = [
            e
            for e in await events(nats_client, tenant, "lead.assigned")
            if unpack(e, ev.LeadAssigned).lead_id in leads
        ]
        return found if len(found) == len(leads) else []

    await eventually(assigned, timeout_s=BUSY_MACHINE_DEADLINE_S)
    sent = await assigned()
    for env in sent[:2]:  # conversion's own events delivered again: no second message
        await publish(nats_client, env, dedupe=False)

    def told() -> dict[str, list[str]]:
        by_lead: dict[str, list[str]] = {}
        for call in wechat.calls("message/send", CORP):
            if call["errcode"] == 0 and call["body"].get("touser") in users:
                for lead_id in leads:
                    if f"lead {lead_id}." in call["body"]["text"]["content"]:
                        by_lead.setdefault(lead_id, []).append(call["body"]["touser"])
        return by_lead

    async def everyone_told() -> bool:
        return len(told()) == len(leads)

    await eventually(everyone_told, timeout_s=BUSY_MACHINE_DEADLINE_S)
    reps = await conv.ListReps(pb.ListRepsRequest(tenant_id=tenant))
    user_of = {r.rep_id: r.wecom_user_id for r in reps.reps}
    expected: dict[str, list[str]] = {}
    for env in sent:
        event = unpack(env, ev.LeadAssigned)
        expected[event.lead_id] = [user_of[event.rep_id]]
    assert told() == expected  # each lead once, to the rep it went to
    assert {user for told_to in expected.values() for user in told_to} == set(users)


async def test_an_assignment_published_without_its_notice_still_tells_the_rep(
    conv, wired, wechat, tenant, nats_client
) -> None:
    """A `lead.assigned` from a replica of an earlier release (which stored no notice with the
    assignment; a rolling upgrade runs both) reaches the rep through the rep-notices consumer,
    once, however often it is delivered."""
    user = _unique("rep-older")
    rep = await make_rep(conv, tenant, user)
    lead_id = _unique("lead-older")
    env = new_envelope(
        producer="conversion",
        event_type="lead.assigned",
        tenant_id=tenant,
        customer_id=_unique("cust-older"),
        payload=ev.LeadAssigned(lead_id=lead_id, rep_id=rep.rep_id),
    )
    await publish(nats_client, env)
    await publish(nats_client, env, dedupe=False)  # delivered again

    def told() -> list[str]:
        return [
            call["body"]["touser"]
            for call in wechat.calls("message/send", CORP)
            if call["errcode"] == 0 and f"lead {lead_id}." in call["body"]["text"]["content"]
        ]

    async def rep_told() -> bool:
        return bool(told())

    await eventually(rep_told, timeout_s=BUSY_MACHINE_DEADLINE_S)
    async with wired.runtime.sessions() as session:
        stored = (
            await session.execute(
                select(RepNoticeRow.idempotency_key).where(RepNoticeRow.lead_id == lead_id)
            )
        ).all()
    assert [k for (k,) in stored] == [f"assigned:{lead_id}"]
    assert told() == [user]
