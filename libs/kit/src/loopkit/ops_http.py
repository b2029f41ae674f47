"""The HTTP side of every service: /healthz, /readyz, /metrics, plus the service's routes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from loopkit.http_edge import EdgeErrors
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


def ops_app(service: str, readiness: ReadinessCheck) -> FastAPI:
    """`readiness` returns None when ready, else the reason it is not."""
    app = FastAPI(title=f"closedloop {service}", docs_url=None, redoc_url=None)
    app.add_middleware(EdgeErrors)

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
