"""Reading incoming events: typed payloads and the event's own time.

A payload of another type than the handler expects can never succeed however often it is
retried, so it is a `DomainError` (`WrongPayload`): the consumer dead-letters it at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf.message import Message

from closedloop.events.v1.envelope_pb2 import Envelope
from loopkit.errors import InvalidArgument
from loopkit.events import unpack

M = TypeVar("M", bound=Message)


class WrongPayload(InvalidArgument):
    """The envelope carries another message type than its event type promises."""


def payload(env: Envelope, message_type: type[M]) -> M:
    """The typed payload; `WrongPayload` (dead-lettered, not retried) if it is another type."""
    try:
        return unpack(env, message_type)
    except ValueError as exc:
        raise WrongPayload(str(exc), field="payload") from None


def occurred_at(env: Envelope, now: Callable[[], datetime]) -> datetime:
    """When the event happened (aware UTC), or `now()` for an envelope without a time, so
    replays and late events land where they happened."""
    if env.HasField("occurred_at"):
        return env.occurred_at.ToDatetime(tzinfo=UTC)
    return now()
