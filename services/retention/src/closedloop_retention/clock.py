"""Time helpers shared by the domain packages: every stored time is UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(value: datetime) -> datetime:
    """An aware UTC datetime (SQLite hands back naive ones; they were stored as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def now() -> datetime:
    return datetime.now(UTC)


def days_between(earlier: datetime, later: datetime) -> float:
    return (utc(later) - utc(earlier)).total_seconds() / 86400.0
