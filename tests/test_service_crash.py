"""A stage service killed (SIGKILL) in the middle of a stream of events loses nothing and does
nothing twice: conversion assigns a stream of leads (400, or longer when it finishes one too
soon) while it is killed and restarted, every lead ends up assigned exactly once, and exactly
one `lead.assigned` per lead reaches JetStream."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest_asyncio
from nats.aio.client import Client

import platform_harness as harness
from closedloop.conversion.v1 import conversion_pb2 as pb
from closedloop.conversion.v1 import conversion_pb2_grpc
from closedloop.events.v1 import conversion_events_pb2 as ev
from conversion_helpers import lead_envelope, make_rep, publish
from loopkit.events import unpack
from loopkit.natsio import ensure_service_streams
from loopkit_dev.natsserver import NatsServer, free_port
from loopkit_dev.testing import PostgresServer, api_keys, eventually, read_events

LEADS = 400
ROUNDS = 5  # streams of 400, 800, ... leads until one is still being assigned at the kill
TENANT = "crash-co"


class ConversionProcess:
    """`python -m closedloop_conversion`, as a pod runs it, on a database and NATS of the test's."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "loopkit.cli", "migrate", "conversion"],
            cwd=harness.ROOT,
            env=self.env,
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "closedloop_conversion"],
                cwd=harness.ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(60)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            return self.process.wait(300)
        return self.process.returncode


@pytest_asyncio.fixture(loop_scope="session")
async def conversion(
    tmp_path: Path, postgres: PostgresServer, nats_server: NatsServer
) -> AsyncIterator[ConversionProcess]:
    database = await postgres.fresh_database("closedloop_crash")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOSEDLOOP_")}
    env.update(
        CLOSEDLOOP_DATABASE_URL=database,
        CLOSEDLOOP_NATS_URL=nats_server.url,
        CLOSEDLOOP_STATE_DIR=str(tmp_path),
        CLOSEDLOOP_GRPC_PORT=str(free_port()),
        CLOSEDLOOP_HTTP_PORT=str(free_port()),
        CLOSEDLOOP_OUTBOX_POLL_INTERVAL_S="0.05",
        # Small batches, so the kill lands between batches and inside one.
        CLOSEDLOOP_CONSUMER_BATCH_SIZE="10",
        CLOSEDLOOP_CONSUMER_ACK_WAIT_S="2",
        **api_keys().env(),
    )
    service = ConversionProcess(env, tmp_path / "conversion.log")
    await asyncio.to_thread(service.migrate)
    service.start()
    yield service
    service.stop()


async def _assigned(stub: Any, rep_ids: list[str]) -> list[str]:
    leads: list[str] = []
    for rep_id in rep_ids:
        answer = await stub.ListLeads(pb.ListLeadsRequest(tenant_id=TENANT, rep_id=rep_id))
        leads += [lead.lead_id for lead in answer.leads]
    return leads


async def test_killed_mid_stream_every_lead_is_assigned_once(
    conversion: ConversionProcess, nats_client: Client
) -> None:
    target = f"127.0.0.1:{conversion.env['CLOSEDLOOP_GRPC_PORT']}"
    async with api_keys().channel(target) as channel:
        stub: Any = conversion_pb2_grpc.ConversionServiceStub(channel)  # type: ignore[no-untyped-call]
        await channel.channel_ready()
        await eventually(lambda: _ready(stub), timeout_s=30)
        capacity = LEADS * 2**ROUNDS
        reps = [
            (await make_rep(stub, TENANT, f"rep-{n}", capacity=capacity)).rep_id for n in range(3)
        ]
        await ensure_service_streams(nats_client.jetstream(), "acquisition", replicas=1)
        # The kill must land with leads still to assign. A quick service can assign a whole
        # stream before the test looks, so each round that ends too late sends a stream twice
        # as long, and the kill waits for the first round that still has work left.
        sent = 0
        for round_ in range(ROUNDS):
            before, sent = sent, sent + LEADS * 2**round_
            for n in range(before, sent):
                await publish(nats_client, lead_envelope(TENANT, lead_id=f"lead-{n:05d}"))

            async def some_assigned(floor: int = before + (sent - before) // 5) -> bool:
                return len(await _assigned(stub, reps)) >= floor

            await eventually(some_assigned, timeout_s=60)
            if len(await _assigned(stub, reps)) < sent:
                break
        else:
            raise AssertionError(f"every one of {sent} leads was assigned before the kill")

    conversion.kill()  # mid-stream: no drain, no outbox flush, batches half done
    conversion.start()

    async with api_keys().channel(target) as channel:
        stub = conversion_pb2_grpc.ConversionServiceStub(channel)  # type: ignore[no-untyped-call]

        async def all_assigned() -> int:
            try:
                done = await _assigned(stub, reps)
            except grpc.aio.AioRpcError:
                return 0  # still starting
            return len(done) == sent

        await eventually(all_assigned, timeout_s=120)
        assigned = await _assigned(stub, reps)
    assert sorted(assigned) == sorted(f"lead-{n:05d}" for n in range(sent))

    async def published() -> Counter[str]:
        events = await read_events(
            nats_client, "CONVERSION", "closedloop.conversion.lead.assigned", tenant_id=TENANT
        )
        return Counter(unpack(e, ev.LeadAssigned).lead_id for e in events)

    async def every_lead_published() -> bool:
        return len(await published()) == sent

    await eventually(every_lead_published, timeout_s=60)
    await asyncio.sleep(0.5)  # a late duplicate would show up by now
    counts = await published()
    assert [lead for lead, n in counts.items() if n != 1] == []
    assert conversion.stop() == 0


async def _ready(stub: Any) -> bool:
    try:
        await stub.ListReps(pb.ListRepsRequest(tenant_id=TENANT))
    except grpc.aio.AioRpcError:
        return False
    return True
