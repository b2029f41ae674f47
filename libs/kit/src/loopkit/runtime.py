"""The service runtime: wires settings, database, NATS, outbox relay, consumers, gRPC and HTTP, and
shuts them down in order. A service's main module builds its domain and hands its transport
adapters to a `ServiceRuntime`; nothing else in a service touches process lifecycle."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from fastapi import APIRouter, FastAPI
from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy import ColumnElement, MetaData, Table, text

from loopkit import db, migrations, natsio
from loopkit.callers import CallersNotConfigured, KeyStore, require_callers
from loopkit.consumer import EventConsumer, Subscription
from loopkit.events import Outbox
from loopkit.expiry import ExpiringKeys, ExpiringRows
from loopkit.grpc_server import GrpcServer
from loopkit.http_edge import LeanRoute
from loopkit.identity_client import IdentityClient
from loopkit.leases import ReplicaLease
from loopkit.logs import configure_logging
from loopkit.ops_http import HttpServer, ops_app
from loopkit.outbox import OutboxRelay
from loopkit.periodic import every
from loopkit.pii import CachedKeys, KeySource, Opener, Sealer
from loopkit.settings import ServiceSpec, Settings, load_settings
from loopkit.tables import KitTables
from loopkit.telemetry import configure_telemetry
from loopkit.workers import WORKER_HEALTH_PREFIX, check_workers, supervise, worker_index

log = logging.getLogger(__name__)

# A background loop that runs until the event is set.
Worker = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class ServiceRuntime:
    def __init__(
        self,
        spec: ServiceSpec,
        settings: Settings,
        *,
        metadata: MetaData,
        tables: KitTables,
        migrations_dir: Path,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.metadata = metadata
        self.tables = tables
        self.migrations_dir = migrations_dir
        self.engine = db.create_engine(
            settings.resolved_database_url(),
            pool_size=settings.database_pool_size,
            overflow=False,
        )
        self.sessions = db.session_factory(self.engine)
        # Set in a worker process of a multi-worker service; only worker 0 serves HTTP.
        self.worker = worker_index()
        self.outbox = Outbox(tables, spec.name)
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self.relay: OutboxRelay | None = None
        self.grpc = GrpcServer(
            settings.grpc_host,
            settings.grpc_port,
            default_deadline_s=settings.default_deadline_s,
            api_token=settings.api_token.get_secret_value() if settings.api_token else None,
            keys=KeyStore(settings.api_keys_file) if settings.api_keys_file else None,
            reuse_port=self.worker is not None,
            health_aliases=[] if self.worker is None else [f"{WORKER_HEALTH_PREFIX}{self.worker}"],
        )
        self._routers: list[APIRouter] = []
        self._lean_routes: list[LeanRoute] = []
        self._subscriptions: list[Subscription] = []
        self.consumers: list[EventConsumer] = []
        self.http: HttpServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stop_workers = asyncio.Event()
        self._workers: list[Worker] = []
        self._closers: list[Callable[[], Awaitable[None]]] = []
        # Parts a service's build shares with tests and tooling by name (its sandbox sender, say).
        self.parts: dict[str, Any] = {}
        # Personal data in events (loopkit.pii): where customer data keys come from (identity sets
        # its own table; every other service asks identity), and whether this service's
        # consumers read the sealed values (then they open them before the handlers run).
        self.pii_keys: KeySource | None = None
        # The keys this process holds (created at start, shared by its relay and consumers).
        self.pii_cache: CachedKeys | None = None
        self.reads_personal_data = False
        # What add_expiry / add_key_expiry registered (each also swept by a worker).
        self.expiring: list[ExpiringRows | ExpiringKeys] = []

    # --- what a service adds -------------------------------------------------------------

    def add_grpc(
        self,
        register: Callable[[grpc.aio.Server], None],
        names: Sequence[str],
        *,
        internal: Sequence[str] = (),
    ) -> None:
        """Servicers of `names`; `internal` calls (full names) are for the services' key only."""
        self.grpc.add(register, names, internal=internal)

    def add_http(self, router: APIRouter, lean: Sequence[LeanRoute] = ()) -> None:
        """`lean`: hot routes of `router` answered without FastAPI's routing (`LeanRoute`)."""
        self._routers.append(router)
        self._lean_routes.extend(lean)

    def add_subscription(self, subscription: Subscription) -> None:
        self._subscriptions.append(subscription)

    def add_worker(self, run: Worker) -> None:
        """A background loop of the service (a sweep, an inbox drain): started after the consumers,
        asked to stop (its event is set) when the service drains, and awaited like them."""
        self._workers.append(run)

    def add_expiry(self, table: Table, column: str, retention_s: float) -> ExpiringRows:
        """Delete rows of `table` once `column` (a timestamp) is older than `retention_s`, checked
        every `retention_sweep_interval_s` like the outbox (loopkit.expiry)."""
        rows = ExpiringRows(self.engine, table, column, retention_s)
        self.expiring.append(rows)
        self.add_worker(
            every(self.settings.retention_sweep_interval_s, rows.prune, name=f"{rows.name} expiry")
        )
        return rows

    def add_key_expiry(
        self,
        table: Table,
        column: str,
        at: str,
        *,
        where: ColumnElement[bool] | None = None,
    ) -> ExpiringKeys:
        """Set the idempotency key `column` of rows of `table` (matching `where`) to NULL once
        `at` is older than `idempotency_key_retention_s`, checked every
        `retention_sweep_interval_s` (loopkit.expiry)."""
        keys = ExpiringKeys(
            self.engine,
            table,
            column,
            at,
            self.settings.idempotency_key_retention_s,
            where=where,
        )
        self.expiring.append(keys)
        self.add_worker(
            every(self.settings.retention_sweep_interval_s, keys.prune, name=f"{keys.name} expiry")
        )
        return keys

    async def prune_expired(self) -> dict[str, int]:
        """One sweep of everything registered with add_expiry / add_key_expiry, now (what the
        workers do every retention_sweep_interval_s): how many rows or keys each forgot."""
        return {item.name: await item.prune() for item in self.expiring}

    @property
    def serves_http(self) -> bool:
        """Whether this process serves HTTP (and so /metrics): every process of a one-process
        service, only worker 0 of a multi-worker one."""
        return self.worker in (None, 0)

    def lease(self, name: str) -> ReplicaLease:
        """A lease one process of the service holds at a time (`loopkit.leases`), given up when
        this process drains: for periodic work one replica is enough for."""
        lease = ReplicaLease(self.engine, f"{self.spec.name}:{name}")
        self.on_stop(lease.release)
        return lease

    def on_stop(self, close: Callable[[], Awaitable[None]]) -> None:
        """Release something the service opened (a client channel) once it has drained."""
        self._closers.append(close)

    def http_app(self) -> FastAPI:
        """The service's HTTP app: the ops routes and every router it added. Built without
        starting anything, so its OpenAPI document can be read (and checked) offline."""
        app = ops_app(self.spec.name, self.readiness, self._lean_routes)
        for router in self._routers:
            app.include_router(router)
        if self._lean_routes:
            # A lean route is served ahead of FastAPI's routes, so it must be one of them: the
            # OpenAPI document (and the tests that hold every route to a kind of caller) see it.
            paths = app.openapi()["paths"]
            for lean in self._lean_routes:
                if lean.method.lower() not in paths.get(lean.path, {}):
                    raise ValueError(f"lean route {lean.method} {lean.path} has no FastAPI route")
        return app

    def remember_pii_keys(self, tenant_id: str, keys: Mapping[str, bytes | None]) -> None:
        """Data keys this process just created (or destroyed: None), for its relay and consumers
        (`CachedKeys.remember`); identity calls it after the commit that wrote them."""
        if self.pii_cache is not None:
            self.pii_cache.remember(tenant_id, keys)

    def wake_relay(self) -> None:
        """Pass as `after_commit` to units of work that wrote events."""
        if self.relay is not None:
            self.relay.wake()

    # --- lifecycle -------------------------------------------------------------------------

    async def migrate(self) -> None:
        await asyncio.to_thread(
            migrations.upgrade,
            self.migrations_dir,
            self.settings.resolved_database_url(),
            service=self.spec.name,
        )

    async def start(self) -> None:
        s = self.settings
        # Before anything connects: a service nobody configured callers for does not run.
        require_callers(self.spec.name, s.api_keys_file, s.allow_anonymous_callers)
        self.nc = await natsio.connect(s.nats_url, name=self.spec.name)
        self.js = self.nc.jetstream()
        await natsio.ensure_service_streams(
            self.js,
            self.spec.name,
            replicas=s.stream_replicas,
            max_age_s=s.stream_max_age_s,
            deadletter_max_age_s=s.deadletter_max_age_s,
        )
        keys = self.pii_cache = CachedKeys(
            self.pii_keys or self._identity_keys(), ttl_s=s.pii_key_cache_s
        )
        self.relay = OutboxRelay(
            self.sessions,
            self.tables,
            self.js,
            batch_size=s.outbox_batch_size,
            poll_interval_s=s.outbox_poll_interval_s,
            outbox_retention_s=s.outbox_retention_s,
            inbox_retention_s=s.inbox_retention_s,
            sweep_interval_s=s.retention_sweep_interval_s,
            sealer=Sealer(keys),
        )
        producers = {sub.producer for sub in self._subscriptions} - {"", self.spec.name}
        for producer in sorted(producers):
            await natsio.ensure_producer_stream(
                self.js, producer, replicas=s.stream_replicas, max_age_s=s.stream_max_age_s
            )
        for sub in self._subscriptions:
            consumer = EventConsumer(
                self.spec.name,
                sub,
                self.sessions,
                self.tables,
                self.js,
                max_deliver=s.consumer_max_deliver,
                ack_wait_s=s.consumer_ack_wait_s,
                batch_size=consumer_batch_size(s, sub),
                after_commit=self.wake_relay,
                opener=Opener(keys) if self.reads_personal_data else None,
            )
            await consumer.start()
            self.consumers.append(consumer)
        if self.serves_http:
            # One HTTP process per pod: /metrics then always reads the same process's counters.
            self.http = HttpServer(self.http_app(), s.http_host, s.http_port)
        await self.grpc.start()
        if self.http is not None:
            await self.http.start()
        settle_heap()  # before the relay, consumers and workers begin
        self._tasks = [asyncio.create_task(self.relay.run(self._stop_workers))]
        self._tasks += [asyncio.create_task(c.run(self._stop_workers)) for c in self.consumers]
        self._tasks += [asyncio.create_task(run(self._stop_workers)) for run in self._workers]
        await self.grpc.set_serving(True)
        if s.api_keys_file is None:
            # Only with CLOSEDLOOP_ALLOW_ANONYMOUS_CALLERS=1 (require_callers); said loudly.
            log.warning(
                "%s: callers are NOT authenticated (CLOSEDLOOP_ALLOW_ANONYMOUS_CALLERS=1): any"
                " caller acts for every tenant; set CLOSEDLOOP_API_KEYS_FILE (docs/operations.md,"
                " Callers and API keys)",
                self.spec.name,
            )
        log.info(
            "%s%s serving gRPC on %s:%d, HTTP %s",
            self.spec.name,
            "" if self.worker is None else f" worker {self.worker}",
            s.grpc_host,
            self.grpc.port,
            f"on {s.http_host}:{self.http.port}" if self.http else "in worker 0",
        )

    def _identity_keys(self) -> KeySource:
        client = IdentityClient.from_settings(self.settings)  # connects on first use only
        self.on_stop(client.close)
        return client

    async def readiness(self) -> str | None:
        # NATS is deliberately not part of readiness: while it is away, writes still commit with
        # their events in the outbox, and the relay sends them when it is back.
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            return f"database unavailable: {type(exc).__name__}"
        return None

    async def stop(self) -> None:
        """Drain: refuse new calls, finish in-flight ones, stop consumers, flush the outbox."""
        s = self.settings
        await self.grpc.stop(s.shutdown_grace_s)
        # Let the relay and consumers finish the batch in hand: cancelling one mid-transaction
        # can leave its connection holding the database (SQLite's write lock) until collected.
        self._stop_workers.set()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=s.shutdown_grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.relay is not None:
            try:
                await self.relay.flush(timeout_s=s.shutdown_grace_s)
            except Exception as exc:
                log.warning("outbox not flushed on shutdown (it will be on restart): %s", exc)
        if self.http is not None:
            await self.http.stop()
        for close in self._closers:
            try:
                await close()
            except Exception as exc:
                log.warning("closing on shutdown failed: %s", exc)
        if self.nc is not None:
            # close, not drain: consumers are stopped and the outbox flushed, and drain can wait
            # its full 30 s timeout on the JetStream publish-ack subscription.
            await self.nc.close()
        await self.engine.dispose()
        log.info("%s stopped", self.spec.name)

    async def serve(self, stop: asyncio.Event | None = None) -> None:
        """Start, run until SIGTERM/SIGINT (or `stop` is set), then stop cleanly."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()


@dataclass(frozen=True)
class ServiceDefinition:
    """Everything the runtime needs to know about a service; each service exports one."""

    spec: ServiceSpec
    metadata: MetaData
    tables: KitTables
    migrations_dir: Path
    # Adds the service's gRPC servicers, HTTP routes and subscriptions to the runtime.
    build: Callable[[ServiceRuntime], None]
    # A service with settings of its own subclasses Settings; the runtime reads it from the env.
    settings_cls: type[Settings] = Settings

    def runtime(self, settings: Settings) -> ServiceRuntime:
        """A runtime with the service's parts added; call it inside the running event loop."""
        rt = ServiceRuntime(
            self.spec,
            settings,
            metadata=self.metadata,
            tables=self.tables,
            migrations_dir=self.migrations_dir,
        )
        self.build(rt)
        return rt


def configure_process(spec: ServiceSpec, settings: Settings) -> None:
    configure_logging(spec.name, settings.log_level, settings.log_format)
    configure_telemetry(spec.name)


def main(definition: ServiceDefinition) -> None:
    """Entry point of `python -m <service package>`: the service itself, or with
    CLOSEDLOOP_WORKERS > 1 the supervisor of that many workers (loopkit.workers)."""
    settings = load_settings(definition.spec, definition.settings_cls)
    try:
        require_callers(
            definition.spec.name, settings.api_keys_file, settings.allow_anonymous_callers
        )
    except CallersNotConfigured as exc:
        sys.exit(f"refusing to start: {exc}")
    if settings.workers > 1 and worker_index() is None:
        configure_logging(definition.spec.name, settings.log_level, settings.log_format)
        sys.exit(supervise(definition.spec, settings))
    check_workers(settings)
    configure_process(definition.spec, settings)

    async def serve() -> None:
        await definition.runtime(settings).serve()

    with asyncio.Runner(loop_factory=event_loop_factory(settings.event_loop)) as runner:
        runner.run(serve())


def event_loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop a service process runs on: uvloop when asked for and installed (it comes
    with uvicorn[standard]), else asyncio's default (None)."""
    if name == "uvloop":
        try:
            import uvloop  # optional: asyncio's loop when it is not there
        except ImportError:
            log.warning("uvloop is not installed; running on asyncio's event loop")
            return None
        return uvloop.new_event_loop
    return None


def consumer_batch_size(settings: Settings, sub: Subscription) -> int:
    """A consumer's fetch batch: CLOSEDLOOP_CONSUMER_BATCH_SIZES by its name; else
    CLOSEDLOOP_CONSUMER_BATCH_SIZE when it is set (it then applies to every consumer); else the
    subscription's own size; else CLOSEDLOOP_CONSUMER_BATCH_SIZE's default."""
    if sub.name in settings.consumer_batch_sizes:
        return settings.consumer_batch_sizes[sub.name]
    if "consumer_batch_size" in settings.model_fields_set or not sub.batch_size:
        return settings.consumer_batch_size
    return sub.batch_size


# The collector's thresholds once a service is up: allocations per young collection, young
# collections per middle one, middle ones per full one (Python's defaults: 700, 10, 10).
GC_THRESHOLDS = (10_000, 20, 100)


@functools.cache  # once per process
def settle_heap() -> None:
    """When a service has started: what start-up made (modules, the ORM's mappers, compiled
    statements, the app) is moved out of the collector's sight (`gc.freeze`), and the collector
    runs less often. A full collection otherwise walks every one of those objects again: in
    bench/assignment.py the full collections took 1.0 of 1.4 s of the collector's time, 0.27 s
    once frozen, and 0.25 against 0.21 CPU ms per lead. Frozen objects are still freed when their
    last reference goes; only garbage cycles left from start-up stay (a one-time amount): not
    collecting first spares a full collection of the whole heap (~0.4 s at start in the bench)."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
