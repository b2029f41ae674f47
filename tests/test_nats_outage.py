"""A NATS outage loses nothing: calls keep succeeding, their events wait in the outbox and reach
JetStream exactly once when the server is back."""

from __future__ import annotations

from pathlib import Path

import httpx
import nats
from sqlalchemy import func, select

from closedloop.common.v1 import common_pb2 as c
from closedloop.identity.v1 import identity_pb2 as pb
from closedloop.identity.v1 import identity_pb2_grpc
from closedloop_identity.main import DEFINITION
from closedloop_identity.models import kit
from loopkit_dev.natsserver import NatsServer, free_port
from loopkit_dev.testing import PostgresServer, eventually, read_events, running_service


def _resolve(value: str) -> pb.ResolveCustomerRequest:
    return pb.ResolveCustomerRequest(
        tenant_id="t-outage",
        identities=[c.Identity(kind=c.IDENTITY_KIND_WECHAT_UNIONID, value=value)],
    )


async def test_identity_keeps_working_through_a_nats_outage(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    server = NatsServer(tmp_path / "nats", port=free_port())
    server.start()
    url = await postgres.fresh_database()
    try:
        async with running_service(
            DEFINITION, database_url=url, nats_url=server.url, state_dir=tmp_path
        ) as svc:
            stub = identity_pb2_grpc.IdentityServiceStub(svc.channel)

            async def unsent() -> int:
                async with svc.runtime.sessions() as session:
                    stmt = select(func.count()).where(kit.outbox.c.published_at.is_(None))
                    return int((await session.execute(stmt)).scalar_one())

            await stub.ResolveCustomer(_resolve("u-before"))
            await eventually(lambda: _is_zero(unsent))
            server.stop(kill=True)
            during = [await stub.ResolveCustomer(_resolve(f"u-during-{i}")) for i in range(5)]
            assert all(r.created for r in during)
            async with httpx.AsyncClient(base_url=svc.http_url) as http:
                assert (await http.get("/readyz")).status_code == 200
            assert await unsent() == 5
            server.start()
            await eventually(lambda: _is_zero(unsent), timeout_s=20)
            nc = await nats.connect(server.url)
            try:
                events = await read_events(nc, "IDENTITY", tenant_id="t-outage")
            finally:
                await nc.close()
            assert sorted(e.type for e in events) == ["customer.created"] * 6
            assert len({e.id for e in events}) == 6
    finally:
        server.stop()


async def _is_zero(count) -> bool:  # type: ignore[no-untyped-def]
    return await count() == 0
