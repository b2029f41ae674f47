"""The funnel gauges with several retention replicas: one computes them (the holder of a lease),
another takes over when it drains. A module of its own: a retention service of another module
still running on the same nats-server would consume this test's events into its database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nats.aio.client import Client
from test_funnel import touch
from test_funnel_metrics import gauges

from closedloop_retention.main import DEFINITION
from closedloop_retention.transport.funnel_metrics import FunnelMetrics
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import PostgresServer, RunningService, eventually, running_service
from retention_helpers import customer, tenant


async def test_one_replica_computes_the_gauges_and_another_takes_over_when_it_drains(
    postgres: PostgresServer, nats_server: NatsServer, nats_client: Client, tmp_path: Path
) -> None:
    """Two replicas on one database: only the lease holder runs the funnel query; the other
    shows nothing until the holder drains, then it takes the lease and the gauges move on."""
    url = await postgres.fresh_database()
    t, hour = tenant(), datetime.now(UTC) - timedelta(hours=2)
    settings: dict[str, object] = {
        "sweep_interval_s": 0,
        "dispatch_interval_s": 0,
        "sandbox_log": "",
        "funnel_metrics_interval_s": 0.2,
    }

    def funnel_metrics(svc: RunningService) -> FunnelMetrics:
        found = svc.runtime.parts["funnel_metrics"]
        assert isinstance(found, FunnelMetrics) and found.lease is not None
        return found

    def holding(metrics: FunnelMetrics) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return metrics.lease is not None and metrics.lease.holding

        return check

    async def exposed(svc: RunningService, n: float) -> bool:
        return (await gauges(svc)).get(t, {}).get("exposed") == n

    async with AsyncExitStack() as later:
        async with running_service(
            DEFINITION,
            database_url=url,
            nats_url=nats_server.url,
            state_dir=tmp_path / "a",
            **settings,
        ) as first:
            holder = funnel_metrics(first)
            await eventually(holding(holder))
            second = await later.enter_async_context(
                running_service(
                    DEFINITION,
                    database_url=url,
                    nats_url=nats_server.url,
                    state_dir=tmp_path / "b",
                    **settings,
                )
            )
            other = funnel_metrics(second)
            assert other.lease is not None
            # The second replica's rounds do not compute: it does not hold the lease.
            assert await other.refresh() == 0
            assert not other.lease.holding
            await touch(nats_client, t, customer(), hour)
            await eventually(lambda: exposed(first, 1.0))
            assert holder.lease is not None and holder.lease.holding
        # The holder drained (and let the lease go): the second replica takes it on its next
        # round and shows what happens from now on.
        await eventually(holding(other))
        await touch(nats_client, t, customer(), hour + timedelta(minutes=1))
        await eventually(lambda: exposed(second, 2.0))
