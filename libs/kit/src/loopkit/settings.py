"""Service settings from `CLOSEDLOOP_*` environment variables.

Every field reads `CLOSEDLOOP_<SERVICE>_<FIELD>` first, then `CLOSEDLOOP_<FIELD>`, then the default,
so one environment can run several services with shared and per-service values.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Bind hosts meaning "every address" (ops_http binds them dual-stack, as gRPC does).
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
# JetStream remembers Nats-Msg-Ids this long (every stream the kit creates): a relay restarted
# within it never publishes twice.
DUPLICATE_WINDOW_S = 24 * 3600.0
DEFAULT_STREAM_MAX_AGE_S = 30 * 86400.0
DEFAULT_DEADLETTER_MAX_AGE_S = 14 * 86400.0


@dataclass(frozen=True)
class ServiceSpec:
    """What a service is called and where it listens by default."""

    name: str
    grpc_port: int
    http_port: int
    module: str


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLOSEDLOOP_", extra="ignore")

    service: str = ""
    # Local state (SQLite files, bundled NATS store) for `make run`.
    state_dir: Path = Path(".closedloop")
    # May contain `{service}`, so one URL serves every service with its own database.
    database_url: str = "sqlite+aiosqlite:///{state_dir}/{service}.db"
    # Connections a service process keeps, and at most opens, to its database (loopkit.db:
    # no overflow connections, each of which was opened and closed per checkout).
    database_pool_size: int = 20
    nats_url: str = "nats://127.0.0.1:4250"
    stream_replicas: int = 1
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 0
    http_host: str = "127.0.0.1"
    http_port: int = 0
    # Upper bound on a call's work when the client sent no deadline, in seconds.
    default_deadline_s: float = 10.0
    shutdown_grace_s: float = 10.0
    # The bearer token this service presents when it calls another (an API key `clk_…` with
    # tenants "*" when the callee checks keys). Without `api_keys_file`, also the one shared
    # token every gRPC caller must present (metadata `authorization`).
    api_token: SecretStr | None = None
    # Per-tenant callers: the key file (see loopkit.callers); every gRPC call needs a key in it.
    # Without one the service refuses to start, unless allow_anonymous_callers says on purpose
    # that anyone who reaches it acts for every tenant (CLOSEDLOOP_ALLOW_ANONYMOUS_CALLERS=1).
    api_keys_file: Path | None = None
    allow_anonymous_callers: bool = False
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|text)$")
    # Worker processes of this service (see loopkit.workers): 1 runs the service in this process;
    # N > 1 starts N workers sharing the gRPC port (PostgreSQL only).
    workers: int = Field(default=1, ge=1)
    # The event loop of `python -m <service>`: uvloop (libuv; its sockets, timers and callbacks
    # in C cost less CPU per request than asyncio's) when installed, else asyncio's own.
    event_loop: str = Field(default="uvloop", pattern="^(uvloop|asyncio)$")
    outbox_poll_interval_s: float = 0.5
    outbox_batch_size: int = 200
    # Retention (docs/operations.md, "Erasure and retention"). A sent outbox row is only a copy of
    # what is already on the stream (JetStream de-duplicates by the stream's own memory of ids),
    # so it goes after an hour. An inbox row must outlive every way its event can come again:
    # redelivery of an unacked message (minutes) and replay of a dead letter, so it is kept a day
    # longer than the DEADLETTER stream keeps anything.
    outbox_retention_s: float = Field(default=3600.0, ge=0)
    inbox_retention_s: float = Field(default=15 * 86400.0, gt=0)
    # Idempotency keys (a CaptureLead request_id, a form's Idempotency-Key) and the first answer
    # they got: a client retries within minutes, so a week is generous; after it the same key is
    # a new request.
    idempotency_key_retention_s: float = Field(default=7 * 86400.0, gt=0)
    # How often the relay deletes expired outbox and inbox rows (and expiring rows, expired keys).
    retention_sweep_interval_s: float = Field(default=60.0, gt=0)
    # Applied when the kit creates a stream; an existing stream keeps the operator's value.
    stream_max_age_s: float = DEFAULT_STREAM_MAX_AGE_S
    deadletter_max_age_s: float = DEFAULT_DEADLETTER_MAX_AGE_S
    consumer_max_deliver: int = 5
    consumer_ack_wait_s: float = 30.0
    # Every consumer's fetch batch, but a subscription may ask for its own size (`Subscription.
    # batch_size`), which this overrides only when set explicitly.
    consumer_batch_size: int = Field(default=100, ge=1)
    # Per consumer (by subscription name, e.g. {"leads": 500}): overrides both.
    consumer_batch_sizes: dict[str, int] = Field(default_factory=dict)
    identity_url: str = "127.0.0.1:50051"
    # Per-call deadline for calls to the identity service, in seconds.
    identity_timeout_s: float = 3.0
    # How long a process keeps a customer's data key (loopkit.pii) before asking identity again:
    # the most a relay or consumer can still seal or open a customer's values after an erasure.
    pii_key_cache_s: float = Field(default=60.0, ge=0)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        """The services speak asyncpg and aiosqlite. A URL without a driver (as a managed
        database's console gives it) gets its async one; another driver, or another database, is
        refused at start rather than at the first query ("No module named 'psycopg'")."""
        scheme, sep, rest = value.partition("://")
        backend, _, driver = scheme.partition("+")
        wanted = {"postgresql": "asyncpg", "postgres": "asyncpg", "sqlite": "aiosqlite"}
        if not sep or backend not in wanted:
            raise ValueError(
                "database_url must be a PostgreSQL or SQLite URL, e.g."
                " postgresql+asyncpg://user@host/closedloop_{service}"
            )
        backend = "postgresql" if backend == "postgres" else backend
        if driver and driver != wanted[backend]:
            raise ValueError(
                f"database_url: the services use {backend}+{wanted[backend]}://, not {scheme}://"
            )
        return f"{backend}+{wanted[backend]}://{rest}"

    @field_validator("consumer_batch_sizes", mode="before")
    @classmethod
    def _sizes_from_json(cls, value: Any) -> Any:
        # A per-service variable (CLOSEDLOOP_<SERVICE>_…) reaches the model as its raw text.
        return json.loads(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_retention(self) -> Settings:
        for name in ("stream_max_age_s", "deadletter_max_age_s"):
            if getattr(self, name) < DUPLICATE_WINDOW_S:
                # A shorter max age would let a restarted relay re-publish an expired event.
                raise ValueError(
                    f"{name} must be at least the {DUPLICATE_WINDOW_S:.0f} s duplicate window"
                )
        if self.inbox_retention_s < self.deadletter_max_age_s + 86400:
            raise ValueError(
                "inbox_retention_s must exceed deadletter_max_age_s by a day: a replayed dead"
                " letter is skipped by the consumers that already applied it only while their"
                " inbox rows exist"
            )
        return self

    def resolved_database_url(self) -> str:
        # Only the two placeholders are replaced: a password may contain any other brace.
        return self.database_url.replace("{service}", self.service).replace(
            "{state_dir}", str(self.state_dir.resolve())
        )


def load_settings(
    spec: ServiceSpec, settings_cls: type[Settings] = Settings, **overrides: Any
) -> Settings:
    """Settings for one service: per-service env > shared env > the spec's ports > defaults."""
    prefix = f"CLOSEDLOOP_{spec.name.upper()}_"
    per_service = {
        key[len(prefix) :].lower(): value
        for key, value in os.environ.items()
        if key.startswith(prefix)
    }
    values: dict[str, Any] = {"service": spec.name}
    env_shared = {
        f[len("CLOSEDLOOP_") :].lower() for f in os.environ if f.startswith("CLOSEDLOOP_")
    }
    if "grpc_port" not in env_shared:
        values["grpc_port"] = spec.grpc_port
    if "http_port" not in env_shared:
        values["http_port"] = spec.http_port
    values.update(per_service)
    values.update(overrides)
    return settings_cls(**values)
