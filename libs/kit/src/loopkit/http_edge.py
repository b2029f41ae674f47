"""What every public HTTP edge (WeChat callbacks, H5 forms, share links) answers the same way:
bad input as a 4xx with a JSON reason and the field at fault, bodies read with a cap and parsed
with a depth limit, an outage as 503 with Retry-After, and a bug as a 500 that keeps the
connection open."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

# FastAPI's own instrumentation labels a request's span and duration with the route it selected
# (private; FastAPI is pinned in uv.lock and test_http_edge checks the label of a lean route).
from fastapi.telemetry._api import _route_selected
from starlette._utils import get_route_path
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loopkit import errors
from loopkit.outages import RETRY_AFTER_S, is_outage
from loopkit.tracing import trace_id_hex

log = logging.getLogger(__name__)

# The HTTP face of the domain errors; anything else a DomainError says is a 400.
_STATUS: list[tuple[type[errors.DomainError], int]] = [
    (errors.InvalidArgument, 400),
    (errors.NotFound, 404),
    (errors.AlreadyExists, 409),
    (errors.FailedPrecondition, 409),
    (errors.Conflict, 409),
    (errors.PermissionDenied, 403),
    (errors.Unauthenticated, 401),
]

# Forms and chat archives are a few levels deep; deeper bodies are hostile (json's C parser
# recurses per level and would raise RecursionError, a 500, at about a thousand).
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_NESTING = re.compile(rb"[\[\]{}]")


def error_response(status: int, reason: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": reason, "field": field}, status_code=status)


def domain_error_response(exc: errors.DomainError) -> JSONResponse:
    status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 400)
    return error_response(status, exc.reason, exc.field)


def unavailable_response(reason: str) -> JSONResponse:
    """503 with Retry-After: a dependency is away; the same request will work later."""
    response = error_response(503, f"{reason}; retry shortly")
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


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


def json_depth(raw: bytes) -> int:
    """How deeply arrays and objects nest in `raw`, counted without parsing (strings skipped)."""
    depth = deepest = 0
    for match in _JSON_NESTING.finditer(_JSON_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def parse_json(raw: bytes, *, max_depth: int = MAX_JSON_DEPTH, field: str = "body") -> Any:
    """A UTF-8 JSON body, or InvalidArgument saying what is wrong with it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.InvalidArgument("body is not UTF-8", field=field) from None
    if json_depth(raw) > max_depth:
        raise errors.InvalidArgument(f"JSON nested deeper than {max_depth} levels", field=field)
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise errors.InvalidArgument("body is not JSON", field=field) from None


# A lean route's handler: the request and the path's parameters (strings) in, a response out.
LeanHandler = Callable[..., Awaitable[Response]]


@dataclass(frozen=True)
class LeanRoute:
    """A hot route answered straight from the kit's edge middleware, without FastAPI's router,
    parameter parsing and inner middleware (~0.1 ms of CPU a request on this machine). What stays:
    the edges' error answers (EdgeErrors), the body limit, FastAPI's server span and duration
    histogram (labelled with `path`). The handler gets the `Request` and the path's parameters
    as strings, validates what it reads itself and answers with a Response (it must not raise
    HTTPException: only domain errors and outages have their answers here). The same path and
    method stay registered as an ordinary FastAPI route (the OpenAPI document), which a lean route
    takes precedence over."""

    method: str
    path: str  # a template: /v1/forms/{page_id}/submissions (a parameter is one path segment)
    handler: LeanHandler
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex, _, convertors = compile_path(self.path)
        if any(type(c).__name__ != "StringConvertor" for c in convertors.values()):
            raise ValueError(f"a lean route's parameters are plain strings: {self.path}")
        object.__setattr__(self, "regex", regex)


def _lean_match(
    routes: Sequence[LeanRoute], scope: Scope
) -> tuple[LeanRoute, dict[str, str]] | None:
    method = scope["method"]
    for route in routes:
        if route.method == method and (found := route.regex.match(get_route_path(scope))):
            return route, found.groupdict()
    return None


async def _serve_lean(
    route: LeanRoute, params: dict[str, str], scope: Scope, receive: Receive, send: Send
) -> None:
    scope["path_params"] = params
    _route_selected(scope=scope, path=route.path)
    response = await route.handler(Request(scope, receive), **params)
    await response(scope, receive, send)


class EdgeErrors:
    """ASGI middleware: an error no route handled is answered here, not by the server.

    Starlette re-raises an unhandled error after its 500, and uvicorn then closes the kept-alive
    connection, so a pooled client loses an unrelated request. Answering here ends the request
    normally: a domain error as its 4xx, an outage as 503 + Retry-After, anything else as a JSON
    500 with the trace id. `lean`: routes served here directly (`LeanRoute`).
    """

    def __init__(self, app: ASGIApp, lean: Sequence[LeanRoute] = ()) -> None:
        self.app = app
        self.lean = tuple(lean)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lean = _lean_match(self.lean, scope) if self.lean else None
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            if lean is None:
                await self.app(scope, receive, tracked)
            else:
                await _serve_lean(*lean, scope, receive, tracked)
        except Exception as exc:
            if started:
                raise  # half a response is out: only closing the connection is honest
            if isinstance(exc, errors.DomainError):
                response = domain_error_response(exc)
            elif is_outage(exc):
                log.warning(
                    "%s %s: dependency unavailable: %s", scope["method"], scope["path"], exc
                )
                response = unavailable_response("a dependency is unavailable")
            else:
                log.exception("%s %s failed", scope["method"], scope["path"])
                trace = trace_id_hex()
                response = error_response(500, f"internal error (trace {trace or 'none'})")
            await response(scope, receive, send)
