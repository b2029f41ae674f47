"""Small helpers every concept of the conversion domain uses."""

from __future__ import annotations

from datetime import UTC, datetime

from ulid import ULID

from loopkit.errors import InvalidArgument

MAX_TEXT = 200


def now() -> datetime:
    return datetime.now(UTC)


def utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes: they are UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def new_id() -> str:
    return str(ULID())


def required(value: str, field: str, *, max_len: int = MAX_TEXT) -> str:
    text = value.strip()
    if not text:
        raise InvalidArgument("is required", field=field)
    if len(text) > max_len:
        raise InvalidArgument(f"at most {max_len} characters", field=field)
    return text


def optional(value: str, field: str, *, max_len: int = MAX_TEXT) -> str:
    text = value.strip()
    if len(text) > max_len:
        raise InvalidArgument(f"at most {max_len} characters", field=field)
    return text
