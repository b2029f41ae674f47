"""Retention's broadcasts go out through the gateway a page at a time: a broadcast to N
recipients is ceil(N / page) SendMessages calls, every recipient gets exactly one message at
WeChat (the emulator's log), a dispatcher that died before recording its page sends nothing
twice on retry, and recipients outside the 48-hour window get the template message. The gateway
and retention run in this process against the WeChat API emulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
import pytest_asyncio
from nats.aio.client import Client
from sqlalchemy import func, select, update

import closedloop_gateway.main
import closedloop_retention.main
from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.retention.v1 import retention_pb2 as pb
from closedloop.retention.v1 import retention_pb2_grpc
from closedloop_gateway.models import InteractionRow, SendRow
from closedloop_retention.models import ActivityRow, RecipientRow
from gateway_helpers import APP, TENANT, Emulator, emulator, gateway_overrides
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import PostgresServer, RunningService, eventually, running_service
from retention_helpers import publish

PAGE = 3
SEND_MESSAGES = "/closedloop.gateway.v1.GatewayService/SendMessages"
SEND_MESSAGE = "/closedloop.gateway.v1.GatewayService/SendMessage"


class Pair(NamedTuple):
    gateway: RunningService
    retention: RunningService
    wechat: Emulator


@pytest.fixture(scope="module")
def wechat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with emulator(tmp_path_factory.mktemp("emulator")) as running:
        yield running


async def _database(request: pytest.FixtureRequest, tmp: Path, name: str) -> str:
    if request.param == "postgres":
        pg: PostgresServer = request.getfixturevalue("postgres")
        return await pg.fresh_database()
    return f"sqlite+aiosqlite:///{tmp}/{name}.db"


@pytest_asyncio.fixture(loop_scope="session", scope="module", params=["sqlite", "postgres"])
async def pair(
    request: pytest.FixtureRequest,
    nats_server: NatsServer,
    wechat: Emulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Pair]:
    tmp = tmp_path_factory.mktemp(f"pages-{request.param}")
    async with (
        running_service(
            closedloop_gateway.main.DEFINITION,
            database_url=await _database(request, tmp, "gateway"),
            nats_url=nats_server.url,
            state_dir=tmp,
            **gateway_overrides(wechat.url),
        ) as gateway,
        running_service(
            closedloop_retention.main.DEFINITION,
            database_url=await _database(request, tmp, "retention"),
            nats_url=nats_server.url,
            state_dir=tmp,
            sweep_interval_s=0,
            dispatch_interval_s=0,  # the test runs the dispatcher itself
            sandbox_log="",
            gateway_url=gateway.grpc_target,
            broadcast_page_size=PAGE,
        ) as retention,
    ):
        yield Pair(gateway, retention, wechat)


async def _calls(gateway: RunningService, method: str) -> int:
    """How many calls of `method` the gateway has answered (its gRPC duration histogram)."""
    async with httpx.AsyncClient(trust_env=False) as http:
        text = (await http.get(f"{gateway.http_url}/metrics")).text
    total = 0.0
    for line in text.splitlines():
        histogram = line.startswith("closedloop_grpc_server_duration") and "_count{" in line
        if histogram and f'rpc_method="{method}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


async def _followers(pair: Pair, nc: Client, n: int, *, interacted: int) -> list[tuple[str, str]]:
    """n consenting leads (customer, openid) of the gateway's account; the first `interacted`
    messaged it now (their 48-hour window is open at the gateway and in retention)."""
    people = [(str(uuid.uuid4().int)[:26].zfill(26), f"o-{uuid.uuid4().hex}") for _ in range(n)]
    tag = f"tag{uuid.uuid4().hex[:8]}"
    for cid, openid in people:
        ident = c.Identity(kind=c.IDENTITY_KIND_WECHAT_OPENID, scope=APP, value=openid)
        await publish(
            nc,
            "acquisition",
            "lead.captured",
            TENANT,
            cid,
            acq.LeadCaptured(
                lead_id=uuid.uuid4().hex,
                channel_id="ch-1",
                consent_granted=True,
                tags=[tag],
                identities=[ident],
            ),
        )
    opened = [cid for cid, _ in people[:interacted]]
    for cid in opened:
        await publish(
            nc,
            "acquisition",
            "interaction.recorded",
            TENANT,
            cid,
            acq.InteractionRecorded(interaction_id=uuid.uuid4().hex, kind="text", app_id=APP),
        )
    stub = retention_pb2_grpc.RetentionServiceStub(pair.retention.channel)

    async def known() -> bool:
        preview = await stub.PreviewSegment(
            pb.PreviewSegmentRequest(tenant_id=TENANT, expression=f"tag = '{tag}'")
        )
        if preview.count != n:
            return False
        async with pair.gateway.runtime.sessions() as session:
            windows = await session.scalar(
                select(func.count()).where(
                    InteractionRow.subject.in_([f"customer:{cid}" for cid in opened])
                )
            )
        if windows != len(opened):
            return False
        # and retention's own record of the window (its consumers may lag the gateway's)
        async with pair.retention.runtime.sessions() as session:
            seen = await session.scalar(
                select(func.count()).where(
                    ActivityRow.customer_id.in_(opened),
                    ActivityRow.last_interaction_at.is_not(None),
                )
            )
        return seen == len(opened)

    await eventually(known)
    pair.retention.runtime.parts["tag"] = tag
    return people


async def _broadcast(pair: Pair, tag: str, **template: object) -> pb.Broadcast:
    stub = retention_pb2_grpc.RetentionServiceStub(pair.retention.channel)
    await stub.SetLifecycleRules(
        pb.SetLifecycleRulesRequest(
            tenant_id=TENANT,
            rules=pb.LifecycleRules(
                quiet_start="00:00", quiet_end="00:00", cap_messages=100, send_rate_per_second=1000
            ),
            fields=["quiet_start", "quiet_end", "cap_messages", "send_rate_per_second"],
        )
    )
    scheduled = await stub.ScheduleBroadcast(
        pb.ScheduleBroadcastRequest(
            tenant_id=TENANT, expression=f"tag = '{tag}'", template="Spring sale", **template
        )
    )
    b = scheduled.broadcast

    async def all_due() -> bool:  # the planner spreads sends at 1000 a second
        async with pair.retention.runtime.sessions() as session:
            last = await session.scalar(
                select(func.max(RecipientRow.send_at)).where(
                    RecipientRow.broadcast_id == b.broadcast_id
                )
            )
        return last is not None and last.replace(tzinfo=UTC) <= datetime.now(UTC)

    await eventually(all_due)
    return b


async def _recipients(pair: Pair, broadcast_id: str) -> dict[str, tuple[int, str]]:
    stub = retention_pb2_grpc.RetentionServiceStub(pair.retention.channel)
    got = await stub.GetBroadcast(
        pb.GetBroadcastRequest(tenant_id=TENANT, broadcast_id=broadcast_id, include_recipients=True)
    )
    return {r.customer_id: (r.status, r.message_id) for r in got.recipients}


def _to(wechat: Emulator, api: str, openids: set[str]) -> list[str]:
    return [x["body"]["touser"] for x in wechat.calls(api, APP) if x["body"]["touser"] in openids]


async def test_a_broadcast_is_sent_in_pages_once_per_recipient(
    pair: Pair, nats_client: Client
) -> None:
    n = 7
    people = await _followers(pair, nats_client, n, interacted=n)
    openids = {o for _, o in people}
    b = await _broadcast(pair, pair.retention.runtime.parts["tag"])
    workers = pair.retention.runtime.parts["workers"]
    pages_before = await _calls(pair.gateway, SEND_MESSAGES)
    singles_before = await _calls(pair.gateway, SEND_MESSAGE)

    assert await workers.dispatch() == n
    assert await _calls(pair.gateway, SEND_MESSAGES) - pages_before == math.ceil(n / PAGE)
    assert await _calls(pair.gateway, SEND_MESSAGE) == singles_before
    first = await _recipients(pair, b.broadcast_id)
    assert {s for s, _ in first.values()} == {pb.RECIPIENT_STATUS_SENT}
    assert all(m for _, m in first.values())

    async def all_at_wechat() -> bool:
        return len(_to(pair.wechat, "message/custom/send", openids)) >= n

    await eventually(all_at_wechat)
    assert sorted(_to(pair.wechat, "message/custom/send", openids)) == sorted(openids)

    # The dispatcher dies after the gateway stored its page and before it recorded it: the
    # recipients are left "sending" until their claim goes stale, then handed over again.
    async with pair.retention.runtime.sessions() as session, session.begin():
        await session.execute(
            update(RecipientRow)
            .where(RecipientRow.broadcast_id == b.broadcast_id)
            .values(
                status="sending",
                message_id="",
                sent_at=datetime.now(UTC) - timedelta(hours=1),
            )
        )
    assert await workers.dispatch() == n
    assert await _calls(pair.gateway, SEND_MESSAGES) - pages_before == 2 * math.ceil(n / PAGE)
    assert await _recipients(pair, b.broadcast_id) == first  # the same sends, by their keys

    async def settled() -> bool:
        async with pair.gateway.runtime.sessions() as session:
            statuses = (
                await session.scalars(
                    select(SendRow.status).where(SendRow.id.in_([m for _, m in first.values()]))
                )
            ).all()
        return len(statuses) == n and set(statuses) == {"sent"}

    await eventually(settled)
    assert sorted(_to(pair.wechat, "message/custom/send", openids)) == sorted(openids)


async def test_outside_the_window_the_broadcast_template_goes_through_the_gateway(
    pair: Pair, nats_client: Client
) -> None:
    people = await _followers(pair, nats_client, 2, interacted=1)
    (_, recent_openid), (_, silent_openid) = people
    b = await _broadcast(
        pair,
        pair.retention.runtime.parts["tag"],
        wechat_template_id="TPL-spring",
        wechat_template_data={"first": "Spring sale", "remark": "until Sunday"},
    )
    assert await pair.retention.runtime.parts["workers"].dispatch() == 2
    assert {s for s, _ in (await _recipients(pair, b.broadcast_id)).values()} == {
        pb.RECIPIENT_STATUS_SENT
    }

    async def both_at_wechat() -> bool:
        return bool(
            _to(pair.wechat, "message/custom/send", {recent_openid})
            and _to(pair.wechat, "message/template/send", {silent_openid})
        )

    await eventually(both_at_wechat)
    template = [
        x["body"]
        for x in pair.wechat.calls("message/template/send", APP)
        if x["body"]["touser"] == silent_openid
    ]
    assert len(template) == 1 and template[0]["template_id"] == "TPL-spring"
    assert not _to(pair.wechat, "message/custom/send", {silent_openid})
    assert not _to(pair.wechat, "message/template/send", {recent_openid})
