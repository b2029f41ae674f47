"""Events published while the referral service is down are handled when it is back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import nats
import pytest_asyncio

import closedloop_identity.main
from closedloop.referral.v1 import referral_pb2 as pb
from closedloop_referral.main import DEFINITION
from loopkit_dev.natsserver import NatsServer, free_port
from loopkit_dev.testing import RunningService, running_service
from referral_helpers import Env


@pytest_asyncio.fixture(loop_scope="session")
async def private_nats(tmp_path: Path) -> AsyncIterator[NatsServer]:
    """A server of this test's own: the shared one's durable consumers belong to other runs."""
    server = NatsServer(tmp_path / "nats", port=free_port(), sync_always=False)
    server.start()
    yield server
    server.stop()


async def test_events_published_while_down_are_handled_after_a_restart(
    private_nats: NatsServer, tmp_path: Path
) -> None:
    nc = await nats.connect(private_nats.url)
    database_url = f"sqlite+aiosqlite:///{tmp_path}/referral.db"

    def referral_service(identity: RunningService) -> AbstractAsyncContextManager[RunningService]:
        return running_service(
            DEFINITION,
            database_url=database_url,
            nats_url=private_nats.url,
            state_dir=tmp_path,
            identity_url=identity.grpc_target,
            public_base_url="https://r.example.com",
        )

    try:
        async with running_service(
            closedloop_identity.main.DEFINITION,
            database_url=f"sqlite+aiosqlite:///{tmp_path}/identity.db",
            nats_url=private_nats.url,
            state_dir=tmp_path,
        ) as identity:
            async with referral_service(identity) as first:
                env = Env(identity, first, "t-restart", nc)
                program = await env.program(hold_seconds=0)
                referrer, _ = await env.customer("a")
                code = await env.code(referrer, program)
                newcomer, _ = await env.customer("b")

            # Down: the lead and the order wait in their streams.
            await env.lead(newcomer, code=code)
            await env.paid(newcomer, order_id="ord-while-down")

            async with referral_service(identity) as second:
                env = Env(identity, second, "t-restart", nc)
                found = await env.wait_referral(newcomer)
                assert found.referral.referrer_customer_id == referrer
                rewards = await env.wait_rewards(2, referral_id=found.referral.referral_id)
                assert all(r.status == pb.REWARD_STATUS_GRANTED for r in rewards)
                granted = await env.wait_events("reward.granted", 2)
                assert {e.customer_id for e in granted} == {referrer, newcomer}
    finally:
        await nc.close()
