"""The HTTP side of every service: /healthz, /readyz, /metrics, plus the service's routes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from opentelemetry import metrics
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loopkit.tracing import span_from_headers

_duration = metrics.get_meter("loopkit.http").create_histogram(
    "closedloop_http_server_duration", unit="s", description="HTTP server request duration"
)

ReadinessCheck = Callable[[], Awaitable[str | None]]
# Probes and scrapes: not worth a span each.
_OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class _ServerTelemetry:
    """A server span per request (continuing the caller's W3C trace context, so a trace runs from
    an H5 page or a WeChat callback into gRPC calls and events) and its duration by route
    template (`/r/{code}`, never the raw path: bounded label values).

    A plain ASGI middleware: Starlette's BaseHTTPMiddleware would add a task per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _OPS_PATHS:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        with span_from_headers(
            method, headers, kind=SpanKind.SERVER, attributes={"http.request.method": method}
        ) as span:
            try:
                await self.app(scope, receive, send_and_note_status)
            finally:
                route = getattr(scope.get("route"), "path", "unmatched")
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                _duration.record(
                    time.perf_counter() - started,
                    {
                        "http_route": route,
                        "http_request_method": method,
                        "http_response_status_code": str(status),
                    },
                )


def ops_app(service: str, readiness: ReadinessCheck) -> FastAPI:
    """`readiness` returns None when ready, else the reason it is not."""
    app = FastAPI(title=f"closedloop {service}", docs_url=None, redoc_url=None)

    app.add_middleware(_ServerTelemetry)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        reason = await readiness()
        if reason is None:
            return JSONResponse({"status": "ready", "service": service})
        return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


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
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises the bind error
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
