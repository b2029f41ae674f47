"""The kit tests' tiny service: a schema with the outbox, the inbox and an `applied` table, the
event the tests send, and a way to run the helper processes the tests kill.

Imported by the tests (libs/kit/tests/conftest.py puts this directory on sys.path) and by the
helper scripts beside it, which run as separate processes.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from nats.js import JetStreamContext
from sqlalchemy import Column, Integer, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop.events.v1.identity_events_pb2 import CustomerCreated
from loopkit import db
from loopkit.events import new_envelope, subject_for
from loopkit.tables import kit_tables

HELPERS = Path(__file__).resolve().parent
EVENT_TYPE = "customer.created"

METADATA = db.new_metadata()
KIT = kit_tables(METADATA)
# No unique key on event_id on purpose: an event applied twice shows up as two rows.
APPLIED = Table(
    "applied",
    METADATA,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("customer_id", String(64), nullable=False),
)


@dataclass
class Database:
    """The `database` fixture: a fresh database with this schema."""

    backend: str
    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]


@dataclass
class Stream:
    """The `stream` fixture: a producer of the test's own and its stream."""

    producer: str
    name: str
    subjects: str


async def create_schema(url: str) -> None:
    engine = db.create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(METADATA.create_all)
    finally:
        await engine.dispose()


def customer_created(producer: str, *, tenant_id: str = "t-kit") -> Envelope:
    customer_id = f"c-{uuid.uuid4().hex[:12]}"
    return new_envelope(
        producer=producer,
        event_type=EVENT_TYPE,
        tenant_id=tenant_id,
        customer_id=customer_id,
        payload=CustomerCreated(customer_id=customer_id),
    )


async def publish_created(js: JetStreamContext, producer: str, n: int) -> list[str]:
    """N events published the way the relay does (Nats-Msg-Id = event id); their ids."""
    ids = []
    for _ in range(n):
        env = customer_created(producer)
        await js.publish(
            subject_for(producer, env.type),
            env.SerializeToString(),
            headers={"Nats-Msg-Id": env.id, "Closedloop-Type": env.type},
        )
        ids.append(env.id)
    return ids


async def record_applied(session: AsyncSession, env: Envelope) -> None:
    """The test handler: one `applied` row per application of an event."""
    await session.execute(insert(APPLIED).values(event_id=env.id, customer_id=env.customer_id))


async def applied_counts(sessions: async_sessionmaker[AsyncSession]) -> Counter[str]:
    async with sessions() as session:
        rows = await session.execute(
            select(APPLIED.c.event_id, func.count()).group_by(APPLIED.c.event_id)
        )
        return Counter({event_id: int(n) for event_id, n in rows.all()})


async def unsent_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        stmt = select(func.count()).where(KIT.outbox.c.published_at.is_(None))
        return int((await session.execute(stmt)).scalar_one())


@dataclass
class Finished:
    returncode: int
    output: str


async def start_helper(script: str, *args: str) -> asyncio.subprocess.Process:
    """Start one of the helper scripts in its own Python process (the venv's interpreter)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(HELPERS / script),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def finish(proc: asyncio.subprocess.Process, timeout_s: float = 30.0) -> Finished:
    """Wait for a helper process to end on its own; kill it if it does not within `timeout_s`."""
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
        raise AssertionError(
            f"helper did not finish within {timeout_s}s; its output:\n{out.decode()}"
        ) from None
    assert proc.returncode is not None
    return Finished(proc.returncode, out.decode())


async def run_helper(script: str, *args: str, timeout_s: float = 30.0) -> Finished:
    return await finish(await start_helper(script, *args), timeout_s)
