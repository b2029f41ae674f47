"""Small helpers every concept of the conversion domain uses."""

from __future__ import annotations

from loopkit.errors import InvalidArgument
from loopkit.ids import new_ulid
from loopkit.timestamps import now as now  # shared; re-exported
from loopkit.timestamps import utc as utc
from loopkit.timestamps import utc_or_none as utc_or_none

MAX_TEXT = 200


def new_id() -> str:
    return new_ulid()


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
