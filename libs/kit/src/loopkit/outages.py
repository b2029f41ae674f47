"""Is this error a dependency outage? One answer for every transport and consumer.

An outage (the database restarting, refusing connections or full; NATS away; identity unreachable)
is nobody's fault and passes: callers get gRPC UNAVAILABLE / HTTP 503 with Retry-After and retry,
consumers retry the event for as long as it lasts and never dead-letter it. Anything else is a bug
or bad input and is answered or counted as such.
"""

from __future__ import annotations

import errno
import socket

import nats.errors
import nats.js.errors
from sqlalchemy.exc import DBAPIError

from loopkit.errors import DependencyUnavailable

# What a client is told to wait before trying again (seconds).
RETRY_AFTER_S = 2

# SQLSTATEs of a server that is going away, coming up or full:
# 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now (starting up / shutting
# down), 53300 too many connections, 08xxx connection exceptions.
_OUTAGE_SQLSTATES = {"57P01", "57P02", "57P03", "53300"}
# asyncpg's names for the same, when it raises them without a SQLSTATE (at connect, mid-query).
_OUTAGE_TYPES = {
    "CannotConnectNowError",
    "TooManyConnectionsError",
    "ConnectionDoesNotExistError",
    "AdminShutdownError",
    "CrashShutdownError",
    "ConnectionFailureError",
    "ClientCannotConnectError",
    "PostgresConnectionError",
}
# Messages seen from PostgreSQL and asyncpg during a restart, for wrappers that keep only the text.
_OUTAGE_TEXTS = (
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "too many clients",
    "remaining connection slots are reserved",
    "terminating connection due to administrator command",
    "connection was closed in the middle of operation",
    "connection is closed",
    "connection refused",
    "connection reset",
)
# NATS errors that mean "the server is away or busy", not "the request is wrong".
_NATS_OUTAGES: tuple[type[Exception], ...] = (
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.ConnectionDrainingError,
    nats.errors.NoServersError,
    nats.errors.NoRespondersError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.TimeoutError,
    nats.js.errors.ServiceUnavailableError,
)


# Socket errors of a server that is down or unreachable. Other OSErrors (a file that cannot be
# written, say) are bugs or configuration, not outages: retrying them forever would hide them.
_NETWORK_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ENETDOWN,
    errno.EADDRNOTAVAIL,
}


def _network_error(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | socket.gaierror):
        return True
    if isinstance(exc, OSError) and not isinstance(exc, TimeoutError):
        # asyncio joins the failures of every address of a host into one plain OSError.
        return exc.errno in _NETWORK_ERRNOS or "Connect call failed" in str(exc)
    return False


def _chain(exc: BaseException) -> list[BaseException]:
    """The error, what a DBAPIError wraps, and its causes (bounded: chains can loop)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        if isinstance(current, DBAPIError) and current.orig is not None:
            current = current.orig
        else:
            current = current.__cause__ or current.__context__
    return seen


def is_database_outage(exc: BaseException) -> bool:
    """The database is unreachable, starting, shutting down, full, or dropped the connection."""
    for link in _chain(exc):
        if isinstance(link, TimeoutError):
            return False  # a deadline of the caller's, handled as such
        if isinstance(link, DBAPIError) and link.connection_invalidated:
            return True
        if _network_error(link):
            return True
        if getattr(link, "sqlstate", None) in _OUTAGE_SQLSTATES:
            return True
        if str(getattr(link, "sqlstate", "") or "").startswith("08"):
            return True
        if type(link).__name__ in _OUTAGE_TYPES:
            return True
        if isinstance(link, DBAPIError):
            text = str(link).lower()
            if any(marker in text for marker in _OUTAGE_TEXTS):
                return True
    return False


def is_outage(exc: BaseException) -> bool:
    """Any dependency outage: the database, NATS, or another service (DependencyUnavailable)."""
    if isinstance(exc, (DependencyUnavailable, *_NATS_OUTAGES)):
        return True
    return is_database_outage(exc)


def outage_name(exc: BaseException) -> str:
    """Which dependency an outage is of, for the message a caller reads."""
    if isinstance(exc, DependencyUnavailable):
        return "a service this one needs"
    return "the database" if is_database_outage(exc) else "the message broker"
