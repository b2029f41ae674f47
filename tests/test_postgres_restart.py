"""A PostgreSQL restart loses nothing: calls during the outage fail as UNAVAILABLE (retryable),
the service recovers by itself, and every committed customer and event survives exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import nats
import pytest
from pg_cluster import ThrowawayCluster, throwaway_cluster

from closedloop.common.v1 import common_pb2 as c
from closedloop.identity.v1 import identity_pb2 as pb
from closedloop.identity.v1 import identity_pb2_grpc
from closedloop_identity.main import DEFINITION
from loopkit_dev.testing import eventually, read_events, running_service


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ThrowawayCluster]:
    with throwaway_cluster(tmp_path.name) as pg:
        yield pg


def _resolve(value: str) -> pb.ResolveCustomerRequest:
    return pb.ResolveCustomerRequest(
        tenant_id="t-pg", identities=[c.Identity(kind=c.IDENTITY_KIND_WECHAT_UNIONID, value=value)]
    )


async def test_identity_survives_a_postgres_restart(
    cluster: ThrowawayCluster, nats_server, tmp_path: Path
) -> None:
    async with running_service(
        DEFINITION, database_url=cluster.url, nats_url=nats_server.url, state_dir=tmp_path
    ) as svc:
        stub = identity_pb2_grpc.IdentityServiceStub(svc.channel)
        before = await stub.ResolveCustomer(_resolve("u-before"))
        cluster.stop("immediate")  # a crash, not a polite shutdown
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ResolveCustomer(_resolve("u-during"))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()
        cluster.start()

        async def answers() -> bool:
            try:
                await stub.ResolveCustomer(_resolve("u-after"))
            except grpc.aio.AioRpcError:
                return False
            return True

        await eventually(answers, timeout_s=20)
        again = await stub.ResolveCustomer(_resolve("u-before"))
        assert again.customer.customer_id == before.customer.customer_id and not again.created

    nc = await nats.connect(nats_server.url)
    try:

        async def two_created() -> bool:
            events = await read_events(nc, "IDENTITY", tenant_id="t-pg")
            return sorted(e.type for e in events) == ["customer.created"] * 2

        await eventually(two_created)
    finally:
        await nc.close()
