"""Domain errors. Domain code raises these; transports map them (gRPC status, HTTP 4xx)."""

from __future__ import annotations


class DomainError(Exception):
    """An error a caller can act on: `reason` is human-readable, `field` names the input."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


class InvalidArgument(DomainError):
    """The request itself is wrong (gRPC INVALID_ARGUMENT, HTTP 400/422)."""


class NotFound(DomainError):
    """The thing asked for does not exist for this tenant (gRPC NOT_FOUND, HTTP 404)."""


class AlreadyExists(DomainError):
    """A create collided with an existing thing (gRPC ALREADY_EXISTS, HTTP 409)."""


class FailedPrecondition(DomainError):
    """The request is well-formed but the current state forbids it (gRPC FAILED_PRECONDITION)."""


class PermissionDenied(DomainError):
    """The caller may not do this (gRPC PERMISSION_DENIED, HTTP 403)."""


class Unauthenticated(DomainError):
    """The caller did not say who it is, or said it wrongly (gRPC UNAUTHENTICATED, HTTP 401)."""


class Conflict(DomainError):
    """Concurrent writers collided; the unit of work may be retried (gRPC ABORTED)."""


class DependencyUnavailable(Exception):
    """Another service this one needs (identity, a WeChat API) cannot be reached right now.

    Deliberately not a DomainError: it is transient, so gRPC answers UNAVAILABLE (the client's retry
    policy repeats the call) and a consumer retries the event instead of dead-lettering it.
    """
