"""The HTTP side of every service: /healthz, /readyz, /metrics, plus the service's routes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, cast

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from loopkit.http_docs import API_KEY_SCHEME, API_KEY_SECURITY_SCHEME, ErrorReason, text_answer
from loopkit.http_edge import EdgeErrors, LeanRoute, error_response
from loopkit.settings import WILDCARD_HOSTS

ReadinessCheck = Callable[[], Awaitable[str | None]]


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound socket for `host:port`. A wildcard host is bound like gRPC binds it: `[::]` with
    IPV6_V6ONLY off (IPv4 and IPv6) where the kernel has IPv6, else 0.0.0.0, so an IPv6-only
    cluster reaches the probes and the Ingress too."""
    if host in WILDCARD_HOSTS:
        try:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        except OSError:  # no IPv6 in this kernel or namespace
            pass
        else:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                sock.bind(("::", port))
                return sock
            except OSError:  # IPv6 present but unusable (disabled on the interface)
                sock.close()
        host = "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class Health(BaseModel):
    status: str = Field(description="`ok`")
    service: str


class Ready(BaseModel):
    status: str = Field(description="`ready`")
    service: str


class NotReady(BaseModel):
    status: str = Field(description="`not ready`")
    reason: str = Field(description="what is missing, e.g. `database unavailable: …`")


DESCRIPTION = (
    "The HTTP side of closedloop {service}. Its calls are gRPC (`closedloop.{service}.v1`, "
    "reflection on; docs/api.md); HTTP serves the public edges listed here, if any, and the "
    "probes and metrics every service has. Errors are JSON `{{error, field}}`; an outage is 503 "
    "with Retry-After."
)


def ops_app(service: str, readiness: ReadinessCheck, lean: Sequence[LeanRoute] = ()) -> FastAPI:
    """`readiness` returns None when ready, else the reason it is not. `lean`: hot routes the
    edge middleware answers itself (`loopkit.http_edge.LeanRoute`)."""
    app = FastAPI(
        title=f"closedloop {service}",
        description=DESCRIPTION.format(service=service),
        docs_url=None,
        redoc_url=None,
        # FastAPI's own instrumentation keeps the request's server span and its duration
        # histogram (docs/decisions.md 12); the spans it would add inside every request (for
        # dependency resolution, the endpoint, serialisation) cost ~35 us a request (a fifth of
        # the framework's CPU on a form submission) and show nothing the server span does not.
        # Its log records go to an OpenTelemetry logger provider, which the kit never sets up:
        # off, rather than looked up and found unconfigured on every request.
        telemetry={"operation_spans": False, "logs": False},
    )
    app.add_middleware(EdgeErrors, lean=lean)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError) -> Response:
        """A parameter FastAPI checked (a path pattern): 400 with the field, like every edge."""
        first = exc.errors()[0] if exc.errors() else {}
        where = [str(part) for part in first.get("loc", ()) if part not in ("path", "query")]
        return error_response(400, str(first.get("msg", "invalid")), ".".join(where) or None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """Starlette's own answers (no route, wrong method) in the edges' shape. A path served
        by several routes (a callback's GET and POST) allows the methods of all of them, not
        only those of the first route that matched it."""
        response = error_response(exc.status_code, str(exc.detail))
        if exc.status_code == 405:
            allowed = sorted(
                {
                    method
                    for route in app.router.routes
                    if isinstance(route, Route | APIRoute)
                    and route.matches(request.scope)[0] is not Match.NONE
                    for method in route.methods or ()
                }
            )
            response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.get("/healthz", tags=["ops"], summary="the process is up")
    async def healthz() -> Health:
        return Health(status="ok", service=service)

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="the service can do its work (its database answers)",
        response_model=Ready,
        responses={503: {"model": NotReady, "description": "not ready, and why"}},
    )
    async def readyz() -> JSONResponse:
        reason = await readiness()
        if reason is None:
            return JSONResponse({"status": "ready", "service": service})
        return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)

    @app.get(
        "/metrics",
        tags=["ops"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses={200: text_answer("Prometheus text exposition format")},
    )
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    def document() -> dict[str, Any]:
        # Routes that need an API key name the scheme; the document defines it once.
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    _validation_as_400(operation.get("responses", {}))
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {})["ErrorReason"] = ErrorReason.model_json_schema()
            components.setdefault("securitySchemes", {})[API_KEY_SCHEME] = API_KEY_SECURITY_SCHEME
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
    return app


def _validation_as_400(responses: dict[str, Any]) -> None:
    """FastAPI documents its parameter check as 422 HTTPValidationError; here it answers 400
    `ErrorReason` (`bad_parameter` above)."""
    if responses.pop("422", None) is not None and "400" not in responses:
        responses["400"] = {
            "description": "a parameter that is not of its documented form",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorReason"}}
            },
        }


class _HeadWithBody:
    """A response's transport that holds the status line and headers until the first body write
    and sends both with one `send()` (uvicorn writes them apart: two syscalls, and two segments
    for the client to read, per answer; a send is the costliest thing a form post does here).
    Everything else passes straight through; a close sends what is held first."""

    __slots__ = ("_cycle", "_head", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: Any) -> None:
        self._transport = transport
        self._cycle = cycle
        self._head: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._head is not None:
            data, self._head = self._head + data, None
        elif self._cycle is not None and self._cycle.response_started:
            # The first write after the response started is its head (a 100 Continue, written
            # while the request body is read, comes before and goes out at once). A HEAD
            # answer's body is never written: its head goes at once too.
            held = self._cycle.scope["method"] != "HEAD"
            self._cycle = None
            if held:
                self._head = data
                return
        self._transport.write(data)

    def close(self) -> None:
        if self._head is not None:
            self._transport.write(self._head)
            self._head = None
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools comes with uvicorn[standard]
    _HTTP_PROTOCOL: Any = "auto"
else:

    class _OneSendPerAnswer(HttpToolsProtocol):
        """uvicorn's httptools protocol, each request's answer written with one send()."""

        def on_headers_complete(self) -> None:
            before = self.cycle
            super().on_headers_complete()
            if self.cycle is not None and self.cycle is not before:
                held = _HeadWithBody(self.cycle.transport, self.cycle)
                self.cycle.transport = cast(asyncio.Transport, held)

    _HTTP_PROTOCOL = _OneSendPerAnswer

# What the services' HTTP server speaks (uvicorn's `http=`): bench/lead_capture.py runs its bare
# FastAPI ceiling on it too, so the ceiling has the same transport as the service it measures.
HTTP_PROTOCOL: Any = _HTTP_PROTOCOL


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The service runtime owns SIGTERM/SIGINT; uvicorn must not take them over.
        yield


class HttpServer:
    """uvicorn inside the service's event loop, so HTTP and gRPC share one process and one loop."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            http=_HTTP_PROTOCOL,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self._server = _EmbeddedServer(config)
        self._host = host
        self._port = port
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        sock = listening_socket(self._host, self._port)  # raises the bind error
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise OSError("HTTP server stopped during start-up")
            await asyncio.sleep(0.01)

    @property
    def port(self) -> int:
        for server in self._server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return 0

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
