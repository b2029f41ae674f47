"""What every public HTTP edge (WeChat callbacks, H5 forms, share links) answers the same way:
bad input as a 4xx with a JSON reason and the field at fault, and bodies read with a cap."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from loopkit import errors

# The HTTP face of the domain errors; anything else a DomainError says is a 400.
_STATUS: list[tuple[type[errors.DomainError], int]] = [
    (errors.InvalidArgument, 400),
    (errors.NotFound, 404),
    (errors.AlreadyExists, 409),
    (errors.FailedPrecondition, 409),
    (errors.Conflict, 409),
    (errors.PermissionDenied, 403),
]


def error_response(status: int, reason: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": reason, "field": field}, status_code=status)


def domain_error_response(exc: errors.DomainError) -> JSONResponse:
    status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 400)
    return error_response(status, exc.reason, exc.field)


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is longer than `limit` (never read whole)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
