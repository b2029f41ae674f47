"""NATS connection and JetStream streams."""

from __future__ import annotations

import asyncio
import logging

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from loopkit.events import SUBJECT_ROOT, stream_for
from loopkit.settings import (
    DEFAULT_DEADLETTER_MAX_AGE_S,
    DEFAULT_STREAM_MAX_AGE_S,
    DUPLICATE_WINDOW_S,
)

log = logging.getLogger(__name__)

DEAD_LETTER_STREAM = "DEADLETTER"
DEAD_LETTER_ROOT = f"{SUBJECT_ROOT}.deadletter"


async def connect(url: str, *, name: str) -> Client:
    """A connection that reconnects forever: a NATS restart pauses the service, never kills it."""

    nc = Client()

    async def _on_error(exc: Exception) -> None:
        log.warning("nats error: %s", exc)

    async def _on_disconnected() -> None:
        if not nc.is_closed:  # a close on shutdown is not worth a warning
            log.warning("nats disconnected")

    async def _on_reconnected() -> None:
        log.info("nats reconnected")

    await nc.connect(
        servers=[url],
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=5,
        allow_reconnect=True,
        error_cb=_on_error,
        disconnected_cb=_on_disconnected,
        reconnected_cb=_on_reconnected,
    )
    return nc


class NatsUnreachable(ConnectionError):
    """A one-off command could not reach NATS; the message says why."""


async def connect_once(url: str, *, name: str) -> Client:
    """One quick attempt, for an operator's command: it should fail fast, not reconnect forever."""
    errors: list[Exception] = []

    async def remember(exc: Exception) -> None:
        errors.append(exc)

    try:
        # max_reconnect_attempts=0 would mean "forever" in nats-py's server selection.
        return await asyncio.wait_for(
            nats.connect(
                url,
                name=name,
                connect_timeout=2,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.1,
                error_cb=remember,
            ),
            5,
        )
    except Exception as exc:  # nats-py raises several unrelated types here
        reason = errors[-1] if errors else exc
        raise NatsUnreachable(
            f"cannot reach NATS at {url}: {reason or type(reason).__name__}"
        ) from None


async def ensure_stream(
    js: JetStreamContext,
    name: str,
    subjects: list[str],
    *,
    replicas: int = 1,
    update: bool = True,
    max_age_s: float = DEFAULT_STREAM_MAX_AGE_S,
) -> None:
    """Create a file-backed stream if it is missing (idempotent: every replica calls it on start).

    An existing stream keeps its configuration: retention (`max_age`, `max_bytes`), replicas and
    description belong to the operator once the stream exists (`nats stream edit`), and a restart
    must not undo them. The only change made (with `update`, by the stream's own producer) is
    adding subjects a new version publishes on. With `update=False` (a consumer creating its
    producer's stream ahead of time) an existing stream is never touched. `max_age_s` applies to a
    stream created here (erasure: history older than it is gone; docs/operations.md).
    """
    if max_age_s < DUPLICATE_WINDOW_S:
        raise ValueError(f"max_age_s {max_age_s} is shorter than the duplicate window")
    config = StreamConfig(
        name=name,
        subjects=subjects,
        storage=StorageType.FILE,
        num_replicas=replicas,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        duplicate_window=DUPLICATE_WINDOW_S,
        max_age=max_age_s,
    )
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        try:
            await js.add_stream(config)
            log.info("created stream %s for %s", name, subjects)
            return
        except BadRequestError:
            info = await js.stream_info(name)  # another replica created it between our calls
    if not update:
        return
    current = info.config
    missing = [s for s in subjects if s not in (current.subjects or [])]
    if missing:
        current.subjects = [*(current.subjects or []), *missing]
        await js.update_stream(current)
        log.info("stream %s: added subjects %s", name, missing)


async def ensure_service_streams(
    js: JetStreamContext,
    producer: str,
    *,
    replicas: int,
    max_age_s: float = DEFAULT_STREAM_MAX_AGE_S,
    deadletter_max_age_s: float = DEFAULT_DEADLETTER_MAX_AGE_S,
) -> None:
    """The producer's own stream and the shared dead-letter stream."""
    await ensure_stream(
        js,
        stream_for(producer),
        [f"{SUBJECT_ROOT}.{producer}.>"],
        replicas=replicas,
        max_age_s=max_age_s,
    )
    await ensure_stream(
        js,
        DEAD_LETTER_STREAM,
        [f"{DEAD_LETTER_ROOT}.>"],
        replicas=replicas,
        max_age_s=deadletter_max_age_s,
    )


async def ensure_producer_stream(
    js: JetStreamContext,
    producer: str,
    *,
    replicas: int,
    max_age_s: float = DEFAULT_STREAM_MAX_AGE_S,
) -> None:
    """Another service's stream, created if missing so its consumers can start first."""
    await ensure_stream(
        js,
        stream_for(producer),
        [f"{SUBJECT_ROOT}.{producer}.>"],
        replicas=replicas,
        update=False,
        max_age_s=max_age_s,
    )
