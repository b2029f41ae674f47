"""Rebuild the funnel read model from the event streams:

    python -m closedloop_retention.transport.rebuild_funnel

Deletes the funnel's durable consumers (`retention-funnel-*`), empties the funnel tables (the
per-day rollup too: the replay counts it again) with their inbox rows, and creates the consumers
again from the start of each stream. A running retention service picks the new consumers up by
itself (its pulls name the durable) and replays every event into the read model; a stopped one
does when it starts. Retention's other consumers
and tables are not touched. Settings come from the environment, like the service's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from nats.aio.client import Client
from nats.js.errors import NotFoundError

from closedloop_retention.funnel.service import FunnelService
from loopkit.consumer import EventConsumer, Subscription
from loopkit.db import transact
from loopkit.natsio import NatsUnreachable, connect_once, ensure_producer_stream
from loopkit.operator import settings_for
from loopkit.runtime import ServiceDefinition
from loopkit.settings import Settings


class RebuildError(Exception):
    """Something the operator must fix first (NATS unreachable)."""


async def _connect(url: str) -> Client:
    """One quick attempt, like the `closedloop` CLI: an operator's command fails fast."""
    try:
        return await connect_once(url, name="retention-funnel-rebuild")
    except NatsUnreachable as exc:
        raise RebuildError(str(exc)) from None


async def rebuild(definition: ServiceDefinition, settings: Settings) -> list[str]:
    """Reset the read model and restart its consumers from the streams' start; returns the
    durable names restarted."""
    nc = await _connect(settings.nats_url)
    runtime = definition.runtime(settings)
    funnel: FunnelService = runtime.parts["funnel"]
    subscriptions: list[Subscription] = runtime.parts["funnel_subscriptions"]
    try:
        js = nc.jetstream()
        consumers = [
            EventConsumer(runtime.spec.name, sub, runtime.sessions, runtime.tables, js)
            for sub in subscriptions
        ]
        durables = [c.durable for c in consumers]
        for sub, consumer in zip(subscriptions, consumers, strict=True):
            await ensure_producer_stream(js, sub.producer, replicas=settings.stream_replicas)
            with contextlib.suppress(NotFoundError):  # never started: nothing to forget
                await js.delete_consumer(sub.stream, consumer.durable)
        # After the deletes, so an event the old consumers were applying cannot land after it.
        await transact(runtime.sessions, lambda s: funnel.reset(s, durables))
        for consumer in consumers:
            await consumer.start()  # a fresh durable, delivering from the stream's start
        return durables
    finally:
        await nc.close()
        await runtime.engine.dispose()


def main() -> int:
    from closedloop_retention.main import DEFINITION

    settings = settings_for(DEFINITION)
    try:
        durables = asyncio.run(rebuild(DEFINITION, settings))
    except RebuildError as exc:
        print(f"rebuild_funnel: {exc}", file=sys.stderr)
        return 2
    print(f"funnel reset; replaying from the stream start: {', '.join(durables)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
