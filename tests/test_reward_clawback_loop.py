"""Issue 14's clawback across the services that carry it: referral grants a referrer's points,
retention credits them, identity later merges referrer and newcomer (one person referred
themselves), referral voids the granted reward and retention reverses the points. Identity,
referral and retention run in this process on one nats-server, on SQLite and on PostgreSQL; the
newcomer's lead and order are published as acquisition's and conversion's relays would."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NamedTuple

import pytest
import pytest_asyncio
from google.protobuf.message import Message
from nats.aio.client import Client

import closedloop_identity.main
import closedloop_referral.main
import closedloop_retention.main
from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.events.v1 import conversion_events_pb2 as conv
from closedloop.events.v1 import referral_events_pb2 as ev
from closedloop.identity.v1 import identity_pb2, identity_pb2_grpc
from closedloop.referral.v1 import referral_pb2 as ref
from closedloop.referral.v1 import referral_pb2_grpc
from closedloop.retention.v1 import retention_pb2 as ret
from closedloop.retention.v1 import retention_pb2_grpc
from loopkit.events import new_envelope, subject_for
from loopkit.natsio import ensure_service_streams
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import PostgresServer, RunningService, eventually, running_service

APP = "wx-clawback"


class Loop(NamedTuple):
    identity: RunningService
    referral: RunningService
    retention: RunningService


async def _database(request: pytest.FixtureRequest, tmp: Path, name: str) -> str:
    if request.param == "postgres":
        pg: PostgresServer = request.getfixturevalue("postgres")
        return await pg.fresh_database()
    return f"sqlite+aiosqlite:///{tmp}/{name}.db"


@pytest_asyncio.fixture(loop_scope="session", scope="module", params=["sqlite", "postgres"])
async def loop(
    request: pytest.FixtureRequest,
    nats_server: NatsServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Loop]:
    tmp = tmp_path_factory.mktemp(f"clawback-{request.param}")
    urls = {n: await _database(request, tmp, n) for n in ("identity", "referral", "retention")}
    async with (
        running_service(
            closedloop_identity.main.DEFINITION,
            database_url=urls["identity"],
            nats_url=nats_server.url,
            state_dir=tmp,
        ) as identity,
        running_service(
            closedloop_referral.main.DEFINITION,
            database_url=urls["referral"],
            nats_url=nats_server.url,
            state_dir=tmp,
            identity_url=identity.grpc_target,
            sweep_interval_s=0.2,
            public_base_url="https://r.example.com",
        ) as referral,
        running_service(
            closedloop_retention.main.DEFINITION,
            database_url=urls["retention"],
            nats_url=nats_server.url,
            state_dir=tmp,
            sweep_interval_s=0,
            dispatch_interval_s=0,
            sandbox_log="",
        ) as retention,
    ):
        yield Loop(identity, referral, retention)


async def publish(
    nc: Client, producer: str, kind: str, event: Message, *, tenant: str, customer: str
) -> None:
    """As the producer's outbox relay publishes: its stream, its subject, Nats-Msg-Id = id."""
    js = nc.jetstream()
    await ensure_service_streams(js, producer, replicas=1)
    env = new_envelope(
        producer=producer, event_type=kind, tenant_id=tenant, customer_id=customer, payload=event
    )
    await js.publish(
        subject_for(producer, kind), env.SerializeToString(), headers={"Nats-Msg-Id": env.id}
    )


async def test_a_self_referral_revealed_after_the_grant_reverses_the_points(
    loop: Loop, nats_client: Client
) -> None:
    t = f"t-{uuid.uuid4().hex[:10]}"
    people = identity_pb2_grpc.IdentityServiceStub(loop.identity.channel)
    referral = referral_pb2_grpc.ReferralServiceStub(loop.referral.channel)
    retention = retention_pb2_grpc.RetentionServiceStub(loop.retention.channel)

    async def person(name: str) -> str:
        ident = c.Identity(
            kind=c.IDENTITY_KIND_WECHAT_OPENID, scope=APP, value=f"o-{name}-{uuid.uuid4().hex}"
        )
        answer = await people.ResolveCustomer(
            identity_pb2.ResolveCustomerRequest(tenant_id=t, identities=[ident], actor="test")
        )
        return str(answer.customer.customer_id)

    async def balance(cid: str) -> int:
        account = await retention.GetLoyaltyAccount(
            ret.GetLoyaltyAccountRequest(tenant_id=t, customer_id=cid)
        )
        return int(account.balance)

    program = await referral.CreateProgram(
        ref.CreateProgramRequest(
            program=ref.Program(
                tenant_id=t,
                name="Bring a friend",
                referrer_reward=ref.Reward(kind=ev.REWARD_KIND_POINTS, points=500),
                trigger=ref.REWARD_TRIGGER_FIRST_PAID_ORDER,
                hold_seconds=0,  # granted at once: the merge comes after the grant
                channel_id="ch-referral",
                landing_url="https://shop.example.com/landing",
            )
        )
    )
    referrer, newcomer = await person("a"), await person("b")
    code = await referral.CreateReferralCode(
        ref.CreateReferralCodeRequest(
            tenant_id=t, customer_id=referrer, program_id=program.program.program_id
        )
    )
    lead = acq.LeadCaptured(
        lead_id=f"lead-{uuid.uuid4().hex[:8]}",
        channel_id="ch-referral",
        attribution=acq.Attribution(channel_kind="referral", referral_code=code.code),
        consent_granted=True,
    )
    await publish(nats_client, "acquisition", "lead.captured", lead, tenant=t, customer=newcomer)
    order = conv.OrderPaid(
        order_id=f"ord-{uuid.uuid4().hex[:8]}",
        rep_id="rep-1",
        amount=c.Money(currency="CNY", amount_minor=100),  # 1 yuan: 1 point of its own
    )
    await publish(nats_client, "conversion", "order.paid", order, tenant=t, customer=newcomer)

    async def credited() -> bool:
        # The reward, and the newcomer's order handled by retention before the merge.
        return await balance(referrer) == 500 and await balance(newcomer) == 1

    await eventually(credited)

    merged = await people.MergeCustomers(
        identity_pb2.MergeCustomersRequest(
            tenant_id=t, customer_ids=[referrer, newcomer], actor="ops", reason="same person"
        )
    )
    survivor = merged.survivor.customer_id

    async def reversed_() -> bool:
        account = await retention.GetLoyaltyAccount(
            ret.GetLoyaltyAccountRequest(tenant_id=t, customer_id=survivor, ledger_limit=20)
        )
        return any(e.source == "revoke" for e in account.ledger) and account.balance == 1

    await eventually(reversed_)  # the 500 reward points gone; the order's own point stays
    account = await retention.GetLoyaltyAccount(
        ret.GetLoyaltyAccountRequest(tenant_id=t, customer_id=survivor, ledger_limit=20)
    )
    assert [e.points for e in account.ledger if e.source == "revoke"] == [-500]
    rewards = await referral.ListRewards(ref.ListRewardsRequest(tenant_id=t))
    assert [(r.status, r.reason) for r in rewards.rewards] == [
        (ref.REWARD_STATUS_VOIDED, "self_referral")
    ]
