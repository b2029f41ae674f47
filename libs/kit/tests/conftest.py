"""Fixtures of the shared runtime's tests: a tiny schema on PostgreSQL and SQLite, a stream of the
test's own, and an in-memory span exporter."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.js import JetStreamContext
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from loopkit import db, natsio
from loopkit.events import SUBJECT_ROOT, stream_for
from loopkit.telemetry import configure_telemetry
from loopkit_dev.testing import PostgresServer

# The helper scripts run as processes of their own and import kit_testbed from their directory;
# the tests import it from there too.
sys.path.insert(0, str(Path(__file__).resolve().parent / "helpers"))

from kit_testbed import Database, Stream, create_schema


@pytest_asyncio.fixture(loop_scope="session", params=["postgres", "sqlite"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh database with the outbox, the inbox and `applied`, on PostgreSQL and on SQLite."""
    if request.param == "postgres":
        pg: PostgresServer = request.getfixturevalue("postgres")
        url = await pg.fresh_database("loopkit_test")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/kit.db"
    await create_schema(url)
    engine = db.create_engine(url, pool_size=2)
    yield Database(request.param, url, engine, db.session_factory(engine))
    await engine.dispose()


@pytest.fixture
def producer() -> str:
    """A producer name of the test's own, so its stream and subjects are its own too."""
    return f"kit{uuid.uuid4().hex[:10]}"


@pytest_asyncio.fixture(loop_scope="session")
async def stream(nats_client: Client, producer: str) -> AsyncIterator[Stream]:
    """The producer's stream (and the dead-letter stream) on the session's nats-server."""
    js = nats_client.jetstream()
    await natsio.ensure_service_streams(js, producer, replicas=1)
    yield Stream(producer, stream_for(producer), f"{SUBJECT_ROOT}.{producer}.>")
    await js.delete_stream(stream_for(producer))


@pytest.fixture
def js(nats_client: Client) -> JetStreamContext:
    return nats_client.jetstream()


@pytest.fixture(scope="session")
def span_exporter() -> Iterator[InMemorySpanExporter]:
    """Every span finished in this process, in memory.

    Goes through the kit's own setup (so metrics are configured as services expect) and adds the
    exporter to whatever SDK tracer provider the process has.
    """
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        configure_telemetry("loopkit-tests")
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    yield exporter
    processor.shutdown()
