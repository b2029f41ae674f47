"""The whole TLSRRR loop through the public APIs of the five services, each its own process as
`make run` starts them, on PostgreSQL and the real nats-server.

Customer A arrives by a QR scan and subscribes, leaves a lead, is assigned a rep and pays; retention
moves A to development and credits points; A creates a referral code. B opens A's link inside
WeChat, subscribes and leaves a lead attributed to A, then pays. After the hold period (the clock is
injected through ReleaseDueRewards' `as_of`), A's reward is granted and retention credits A's
points. One trace id runs through every service for B's lead. Both fill the H5 form after the page
signed them in through WeChat (web authorization via the gateway and its emulator).
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

import platform_harness as harness
from closedloop.events.v1 import retention_events_pb2 as retev
from closedloop.referral.v1 import referral_pb2 as ref
from loop_client import HOLD, SERVICES, LoopClient, WechatApp, wait_for
from loopkit.servicelist import listed_services
from loopkit.testing import PostgresServer

TENANT = "loop-co"
APP = WechatApp(app_id="wx-loop-app", token="loop-callback-token")
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
DEVELOPMENT = retev.LIFECYCLE_STAGE_DEVELOPMENT
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
    env["CLOSEDLOOP_ACQUISITION_WECHAT_APPS"] = json.dumps(
        [{"app_id": APP.app_id, "tenant_id": TENANT, "token": APP.token, "aes_key": AES_KEY}]
    )
    # The gateway holds the account and talks to make run's WeChat emulator; the H5 page signs
    # visitors in through it (web authorization): their forms carry WeChat's word on who they are.
    account = {"tenant_id": TENANT, "app_id": APP.app_id, "app_secret": "loop-app-secret"}
    account |= {"token": APP.token, "aes_key": AES_KEY, "default": True}
    env["CLOSEDLOOP_GATEWAY_ACCOUNTS"] = json.dumps({"official_accounts": [account]})
    env["CLOSEDLOOP_ACQUISITION_GATEWAY_URL"] = harness.grpc_target(env, "gateway")
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
            wechat_emulator=f"http://127.0.0.1:{loop_env['CLOSEDLOOP_EMULATOR_PORT']}",
        )
        try:
            yield client
        finally:
            await client.close()


async def test_the_whole_loop(loop: LoopClient, collector: tuple[SpanCollector, int]) -> None:
    now = datetime.now(UTC)
    funnel = await loop.set_up_funnel(now, app_id=APP.app_id)
    [rep_id] = funnel.rep_ids

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
    trace_id = secrets.token_hex(16)
    b_lead = await loop.lead(
        await loop.submit_form(
            funnel.page_id,
            "o-bob",
            APP.app_id,
            "13800138002",
            ref_code=code,
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

    # --- B pays; A's reward is held, then granted after the hold; retention credits it -------
    b_sales_lead = await loop.assigned_lead(bob)
    await loop.pay(bob, b_sales_lead.rep_id, b_sales_lead.lead_id, 29_900)

    async def bob_developed() -> bool:
        return await loop.stage(bob) == DEVELOPMENT

    await wait_for(bob_developed)

    async def held() -> list[Any]:
        return [r for r in await loop.rewards(alice) if r.status == ref.REWARD_STATUS_HELD]

    await wait_for(held)
    assert await loop.points(alice) == points_before_reward  # nothing before the hold ends
    assert await loop.release_rewards(now + HOLD + timedelta(hours=1)) == 1

    async def rewarded() -> bool:
        return await loop.points(alice) == points_before_reward + 500

    await wait_for(rewarded)

    # --- one trace for B's lead, across the services ---------------------------------------
    spans, _ = collector
    expected = {"acquisition", "identity", "conversion", "referral", "retention"}

    async def traced_everywhere() -> bool:
        return expected <= spans.services_by_trace.get(trace_id, set())

    await wait_for(traced_everywhere)
