"""The whole TLSRRR loop through the public APIs of the services, each its own process as
`make run` starts them, on PostgreSQL and the real nats-server, with the gateway talking to the
WeChat API emulator (nothing goes through a sandbox sender).

The company's QR channel gets its ticket from WeChat, its contact-me channel its code from WeCom.
Customer A arrives by a QR scan and subscribes, leaves a lead, is assigned a rep and pays; retention
moves A to development and credits points; A creates a referral code. B opens A's link inside
WeChat, subscribes, signs in on the page through WeChat web authorization and leaves a lead
attributed to A, then adds the rep on WeCom: WeCom's record of the contact carries B's unionid, so
the WeCom friend is B, and B gets the welcome message. B pays. After the hold period (the clock is
injected through ReleaseDueRewards' `as_of`), A's reward is granted and retention credits A's
points. A broadcast reaches A through the official account and B through the rep on WeCom. One
trace id runs through every service for B's lead. Both fill the H5 form after the page signed
them in through WeChat (web authorization via the gateway and its emulator).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

import erasure_scan
import platform_harness as harness
from closedloop.acquisition.v1 import acquisition_pb2 as acq
from closedloop.events.v1 import retention_events_pb2 as retev
from closedloop.identity.v1 import identity_pb2 as idpb
from closedloop.identity.v1 import identity_pb2_grpc
from closedloop.referral.v1 import referral_pb2 as ref
from closedloop.retention.v1 import retention_pb2 as ret
from loop_client import HOLD, SERVICES, Funnel, LoopClient, WechatApp, WecomCorp, ts, wait_for
from loopkit.servicelist import listed_services
from loopkit_dev.testing import PostgresServer

TENANT = "loop-co"
APP = WechatApp(app_id="wx-loop-app", token="loop-callback-token")
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
AGENT_ID = "1000002"
CORP = WecomCorp(corp_id="ww-loop-corp", token="loop-wecom-token", aes_key=AES_KEY[::-1])
# The tenant's official account and WeCom corp, configured once (one file, as a mounted Secret):
# the gateway calls WeChat with the secrets, acquisition and conversion verify the callbacks.
ACCOUNTS = {
    "official_accounts": [
        {
            "tenant_id": TENANT,
            "app_id": APP.app_id,
            "app_secret": "loop-app-secret-6c0f2e",
            "token": APP.token,
            "aes_key": AES_KEY,
        }
    ],
    "wecom_corps": [
        {
            "tenant_id": TENANT,
            "corp_id": CORP.corp_id,
            "contact_secret": "loop-corp-secret-1b8d7a",
            # The corp's application: the gateway messages reps (message/send) with its token.
            "agent_id": AGENT_ID,
            "agent_secret": "loop-agent-secret-9e4c21",
            "token": CORP.token,
            "aes_key": CORP.aes_key,
        }
    ],
}
DEVELOPMENT = retev.LIFECYCLE_STAGE_DEVELOPMENT
SENT, FAILED = ret.RECIPIENT_STATUS_SENT, ret.RECIPIENT_STATUS_FAILED
INVESTIGATION = retev.LIFECYCLE_STAGE_INVESTIGATION


class SpanCollector(trace_service_pb2_grpc.TraceServiceServicer):  # type: ignore[misc]
    """An OTLP trace endpoint of the test's own: which services took part in which trace."""

    def __init__(self) -> None:
        self.services_by_trace: dict[str, set[str]] = {}

    def Export(self, request: Any, context: Any) -> Any:
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            service = attributes.get("service.name", "?")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.services_by_trace.setdefault(span.trace_id.hex(), set()).add(service)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def collector() -> Iterator[tuple[SpanCollector, int]]:
    spans = SpanCollector()
    server = grpc.server(futures.ThreadPoolExecutor(4))
    register = trace_service_pb2_grpc.add_TraceServiceServicer_to_server
    register(spans, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield spans, port
    server.stop(None)


@pytest.fixture
def loop_env(
    tmp_path: Path,
    postgres: PostgresServer,
    collector: tuple[SpanCollector, int],
) -> dict[str, str]:
    listed = {s.name for s in listed_services(harness.ROOT / "services.toml")}
    assert set(SERVICES) <= listed, f"services.toml does not list {set(SERVICES) - listed}"
    env = harness.platform_env(tmp_path / "state")
    prefix = f"closedloop_loop_{uuid.uuid4().hex[:8]}"
    # Each service its own database, created by its migrations and dropped after the test.
    env["CLOSEDLOOP_DATABASE_URL"] = postgres.base_url.rstrip("/") + f"/{prefix}_{{service}}"
    postgres.created.extend(f"{prefix}_{name}" for name in listed)
    accounts_file = tmp_path / "accounts.json"
    accounts_file.write_text(json.dumps(ACCOUNTS))
    env["CLOSEDLOOP_ACCOUNTS_FILE"] = str(accounts_file)
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{collector[1]}"
    env["OTEL_EXPORTER_OTLP_INSECURE"] = "true"
    env["OTEL_BSP_SCHEDULE_DELAY"] = "100"
    return env


@pytest_asyncio.fixture(loop_scope="session")
async def loop(loop_env: dict[str, str]) -> AsyncIterator[LoopClient]:
    with harness.make_run(loop_env):
        client = LoopClient(
            TENANT,
            {name: harness.grpc_target(loop_env, name) for name in SERVICES},
            {name: harness.http_url(loop_env, name) for name in SERVICES},
            APP,
            wechat_emulator=harness.emulator_url(loop_env),
            wecom=CORP,
            api_key=harness.developer_key(loop_env),
        )
        try:
            yield client
        finally:
            await client.close()


async def _funnel_of_alice_and_bob(loop: LoopClient, now: datetime) -> None:
    """GetFunnel, worked out from the two people the loop drove. Alice: subscribed, a lead,
    assigned, paid once, referred Bob. Bob: a share visit, a lead naming Alice, assigned, paid
    once, his referral converted."""
    request = ret.GetFunnelRequest(tenant_id=loop.tenant, to=ts(now + timedelta(days=1)))
    getattr(request, "from").CopyFrom(ts(now - timedelta(days=1)))
    expected = ret.FunnelSteps(
        exposed=2,
        leads=2,
        assigned=2,
        first_paid=2,
        repeat_buyers=0,
        referrers=1,
        referred_newcomers=1,
        referred_paid=1,
        paid_orders=2,
    )

    async def complete() -> bool:
        return (await loop.retention.GetFunnel(request)).total.steps == expected

    await wait_for(complete)
    rates = (await loop.retention.GetFunnel(request)).total.rates
    assert rates.referral_share_of_leads == 0.5
    assert rates.viral_coefficient == 0.5  # 1 referred newcomer / 2 first paid customers


async def _360_of_bob(  # noqa: PLR0917 - what the loop knows of Bob
    loop: LoopClient, bob: str, alice: str, b_lead: Any, b_sales_lead: Any, code: str
) -> None:
    """GetCustomer360 of the newcomer: one call with his lead and its channel, the owner rep,
    his paid order, who referred him and a timeline of it all."""
    request = ret.GetCustomer360Request(tenant_id=loop.tenant, customer_id=bob)

    async def complete() -> Any:
        got = await loop.retention.GetCustomer360(request)
        lead_seen = got.leads and got.leads[0].HasField("captured_at") and got.leads[0].rep_id
        return got if lead_seen and got.orders and got.referral.referral_converted else None

    got = await wait_for(complete)
    assert got.customer_id == bob and got.requested_id == ""
    assert "o-bob" in {i.value for i in got.identities}
    (lead,) = got.leads
    assert lead.lead_id == b_lead.lead_id
    assert lead.channel_id == (b_lead.attribution.first_channel_id or b_lead.channel_id) != ""
    assert lead.rep_id == b_sales_lead.rep_id == got.owner_rep_id
    (order,) = got.orders
    assert (order.amount.amount_minor, order.rep_id) == (29_900, b_sales_lead.rep_id)
    assert got.referral.referred_by_customer_id == alice
    assert got.referral.referred_by_code == code
    assert got.stage == DEVELOPMENT and got.value.order_count == 1
    assert got.points_balance > 0
    kinds = [e.kind for e in got.timeline]
    for kind in ("lead.captured", "lead.assigned", "order.paid", "referral.converted"):
        assert kind in kinds, kinds
    assert [e.at.ToDatetime() for e in got.timeline] == sorted(
        e.at.ToDatetime() for e in got.timeline
    )
    alice_360 = await loop.retention.GetCustomer360(
        ret.GetCustomer360Request(tenant_id=loop.tenant, customer_id=alice)
    )
    assert bob in alice_360.referral.referred_customer_ids
    assert code in alice_360.referral.codes


async def test_the_whole_loop(  # noqa: PLR0915 - one story, told in order
    loop: LoopClient, collector: tuple[SpanCollector, int], loop_env: dict[str, str]
) -> None:
    now = datetime.now(UTC)
    funnel = await loop.set_up_funnel(now, app_id=APP.app_id)
    [rep_id] = funnel.rep_ids

    way = await _channels_have_real_codes(loop, funnel)

    # --- A: scan + subscribe, lead, rep, paid order, development, points, a referral code --
    await loop.subscribe_by_callback("o-alice", scene=funnel.qr_scene)

    async def subscribed() -> bool:  # the callback is answered at once, processed just after
        return (await loop.channel_stats(funnel.qr_channel_id)).subscribes == 1

    await wait_for(subscribed)
    a_lead = await loop.lead(
        await loop.submit_form(funnel.page_id, "o-alice", APP.app_id, "13800138001")
    )
    alice = a_lead.customer_id
    assert a_lead.attribution.last_channel_id == funnel.qr_channel_id
    a_sales_lead = await loop.assigned_lead(alice)
    assert a_sales_lead.rep_id == rep_id
    await loop.pay(alice, rep_id, a_sales_lead.lead_id, 19_900)

    async def alice_developed() -> bool:
        return await loop.stage(alice) == DEVELOPMENT

    await wait_for(alice_developed)

    async def alice_points() -> int:
        return await loop.points(alice)

    points_before_reward = await wait_for(alice_points)
    code = await loop.referral_code(alice, funnel.program_id)

    # --- B: opens A's link inside WeChat, subscribes, leaves a lead attributed to A ----------
    visit = await loop.open_share_link(code, "o-bob", APP.app_id)
    assert visit.status_code == 302, visit.text
    assert f"ref={code}" in visit.headers["location"]

    async def visit_counted() -> bool:  # as the page loads, the visit reaches acquisition
        return (await loop.channel_stats(funnel.referral_channel_id)).visits == 1

    await wait_for(visit_counted)
    await loop.subscribe_by_callback("o-bob")
    session = await _b_signs_in_through_wechat(loop, funnel, code)
    trace_id = secrets.token_hex(16)
    b_lead = await loop.lead(
        await loop.submit_form(
            funnel.page_id,
            "o-bob",
            APP.app_id,
            "13800138002",
            ref_code=code,
            session=session,
            traceparent=f"00-{trace_id}-{secrets.token_hex(8)}-01",
        )
    )
    bob = b_lead.customer_id
    assert bob != alice
    assert b_lead.attribution.referrer_customer_id == alice
    assert b_lead.attribution.referral_code == code

    async def bob_referred() -> Any:
        return await loop.referral_of(bob)

    referral = await wait_for(bob_referred)
    assert referral.referrer_customer_id == alice
    assert referral.status == ref.REFERRAL_STATUS_APPROVED

    async def bob_known() -> bool:
        return await loop.stage(bob) == INVESTIGATION

    await wait_for(bob_known)

    await _friend_add_joins_b_and_is_welcomed(loop, bob, way, rep_id, funnel.rep_wecom_ids[0])

    # --- B's lead is the rep's: the corp's application tells the rep on WeCom ---------------
    b_sales_lead = await loop.assigned_lead(bob)
    await _rep_told_of_the_lead(loop, b_sales_lead.lead_id, funnel.rep_wecom_ids[0])

    # --- B pays; A's reward is held, then granted after the hold; retention credits it -------
    await loop.pay(bob, b_sales_lead.rep_id, b_sales_lead.lead_id, 29_900)

    async def bob_developed() -> bool:
        return await loop.stage(bob) == DEVELOPMENT

    await wait_for(bob_developed)

    async def held() -> list[Any]:
        return [r for r in await loop.rewards(alice) if r.status == ref.REWARD_STATUS_PENDING]

    await wait_for(held)
    assert await loop.points(alice) == points_before_reward  # nothing before the hold ends
    assert await loop.release_rewards(now + HOLD + timedelta(hours=1)) == 1

    async def rewarded() -> bool:
        return await loop.points(alice) == points_before_reward + 500

    await wait_for(rewarded)
    await _funnel_of_alice_and_bob(loop, now)
    await _360_of_bob(loop, bob, alice, b_lead, b_sales_lead, code)

    await _broadcast_reaches_both(loop, alice, bob, funnel.rep_wecom_ids[0])

    # --- one trace for B's lead, across the services ---------------------------------------
    await _one_trace(collector[0], trace_id)

    # --- A asks to be forgotten: no copy of her phone or openid stays readable anywhere ----
    await _forgetting_leaves_no_readable_copy(loop, loop_env, alice, ["13800138001", "o-alice"])
    with pytest.raises(grpc.aio.AioRpcError) as forgotten:
        await loop.retention.GetCustomer360(
            ret.GetCustomer360Request(tenant_id=loop.tenant, customer_id=alice)
        )
    assert forgotten.value.code() == grpc.StatusCode.NOT_FOUND


async def _forgetting_leaves_no_readable_copy(
    loop: LoopClient, loop_env: dict[str, str], customer_id: str, values: list[str]
) -> None:
    """After ForgetCustomer, every service's tables and outbox, and every stream (dead letters
    included), are searched for the person's values in plain text (docs/operations.md)."""
    identity = identity_pb2_grpc.IdentityServiceStub(loop.channels["identity"])  # type: ignore[no-untyped-call]
    await identity.ForgetCustomer(
        idpb.ForgetCustomerRequest(tenant_id=TENANT, customer_id=customer_id, reason="PIPL")
    )
    url = loop_env["CLOSEDLOOP_DATABASE_URL"].replace("postgresql+asyncpg", "postgresql")
    databases = [
        url.format(service=s.name) for s in listed_services(harness.ROOT / "services.toml")
    ]

    async def left() -> list[str]:
        return await erasure_scan.in_databases(databases, values) + await erasure_scan.in_streams(
            harness.nats_url(loop_env), values
        )

    async def nothing_left() -> bool:
        return not await left()

    try:
        await wait_for(nothing_left, timeout_s=120)
    except TimeoutError:
        pytest.fail(f"readable after the forget: {await left()}")


async def _channels_have_real_codes(loop: LoopClient, funnel: Funnel) -> Any:
    """The QR channel's ticket came from WeChat, the contact-me code from WeCom."""
    qr = (
        await loop.acquisition.GetChannel(
            acq.GetChannelRequest(tenant_id=TENANT, channel_id=funnel.qr_channel_id)
        )
    ).channel
    assert qr.code.ticket and qr.code.image_url, qr.code.missing_reason
    made = await loop.wechat_calls("qrcode/create")
    assert [c["body"]["action_info"]["scene"]["scene_str"] for c in made] == [funnel.qr_scene]
    way = await loop.set_up_contact_way(funnel, "Hi, I am your trial adviser.")
    assert way.code.config_id
    [asked_way] = await loop.wechat_calls("externalcontact/add_contact_way")
    assert (asked_way["body"]["state"], asked_way["body"]["user"]) == (
        way.state,
        [funnel.rep_wecom_ids[0]],
    )
    return way


async def _friend_add_joins_b_and_is_welcomed(
    loop: LoopClient, bob: str, way: Any, rep_id: str, rep_wecom_id: str
) -> None:
    """B adds the rep on WeCom: WeCom's record of the contact carries B's unionid, so the WeCom
    friend is B; the welcome message goes out with the callback's code."""
    await loop.add_wecom_friend(rep_wecom_id, "wm-bob", state=way.state, welcome_code="WC-bob")

    async def befriended() -> list[Any]:
        return [o for o in await loop.ownerships(bob) if o.external_userid == "wm-bob"]

    [friendship] = await wait_for(befriended)
    assert (friendship.rep_id, friendship.channel_id) == (rep_id, way.channel_id)

    async def welcomed() -> list[dict[str, Any]]:
        return await loop.wechat_calls("externalcontact/send_welcome_msg")

    [welcome] = await wait_for(welcomed)
    assert (welcome["body"]["welcome_code"], welcome["errcode"]) == ("WC-bob", 0)
    assert welcome["body"]["text"]["content"] == "Hi, I am your trial adviser."


async def _rep_told_of_the_lead(loop: LoopClient, lead_id: str, rep_wecom_id: str) -> None:
    """Conversion's rep notice for the assignment (`assigned:<lead id>`) went out through the
    gateway as a message/send from the corp's application to the rep's WeCom user id."""

    async def told() -> list[dict[str, Any]]:
        return [
            c
            for c in await loop.wechat_calls("message/send")
            if lead_id in c["body"].get("text", {}).get("content", "")
        ]

    [notice] = await wait_for(told)
    assert notice["errcode"] == 0, notice
    assert notice["corp_id"] == CORP.corp_id
    assert (notice["body"]["touser"], str(notice["body"]["agentid"])) == (rep_wecom_id, AGENT_ID)


async def _broadcast_reaches_both(loop: LoopClient, alice: str, bob: str, rep: str) -> None:
    """A broadcast to everyone who consented: A through the official account (a customer-service
    text, A interacted within 48 h); B, whose contact is now the WeCom friendship, through the
    adviser's 1:1 broadcast (add_msg_template)."""
    text = "Spring sale for you"
    sale = await loop.broadcast("consent = true AND unsubscribed = false", text)
    assert sale.stats.recipients == 2

    async def handed_over() -> list[Any]:
        found = await loop.broadcast_recipients(sale.broadcast_id)
        done = (SENT, FAILED, ret.RECIPIENT_STATUS_SKIPPED)
        return found if all(r.status in done for r in found) else []

    outcome = {r.customer_id: (r.status, r.reason) for r in await wait_for(handed_over)}
    assert outcome == {alice: (SENT, ""), bob: (SENT, "")}, outcome

    async def delivered() -> set[tuple[str, str]]:
        texts = await loop.wechat_calls("message/custom/send")
        reps = await loop.wechat_calls("externalcontact/add_msg_template")
        return {
            ("oa", c["body"]["touser"])
            for c in texts
            if c["errcode"] == 0 and c["body"]["text"]["content"] == text
        } | {
            (c["body"]["sender"], *c["body"]["external_userid"])
            for c in reps
            if c["errcode"] == 0 and c["body"]["text"]["content"] == text
        }

    async def both_reached() -> bool:
        return await delivered() == {("oa", "o-alice"), (rep, "wm-bob")}

    await wait_for(both_reached)


async def _b_signs_in_through_wechat(loop: LoopClient, funnel: Funnel, code: str) -> str:
    """B opens the page in WeChat's browser: web authorization vouches for B's openid and
    unionid (WeChat knows B by one unionid across the official account and WeCom)."""
    rep_wecom_id = funnel.rep_wecom_ids[0]
    await loop.wechat_person(app_id=APP.app_id, openid="o-bob", unionid="u-bob")
    await loop.wechat_person(
        corp_id=CORP.corp_id,
        external_userid="wm-bob",
        unionid="u-bob",
        follow_userids=[rep_wecom_id],
    )
    session = await loop.sign_in_with_wechat(funnel.page_id, "o-bob", code)
    authorized = await loop.wechat_calls("sns/oauth2/access_token")
    # A's sign-in and B's, each code exchanged once.
    assert [(c.get("app_id"), c["errcode"]) for c in authorized] == [(APP.app_id, 0)] * 2
    return session


async def _one_trace(spans: SpanCollector, trace_id: str) -> None:
    """Every service took part in the trace B's form started."""
    expected = {"acquisition", "identity", "conversion", "referral", "retention"}

    async def traced_everywhere() -> bool:
        return expected <= spans.services_by_trace.get(trace_id, set())

    await wait_for(traced_everywhere)
