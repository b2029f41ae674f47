"""The HTTP edge as a pooled client sees it: JSON bodies with a depth limit, an outage as 503 with
Retry-After, and an unexpected error as a JSON 500 that keeps the kept-alive connection open."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from loopkit import errors
from loopkit.http_edge import json_depth, parse_json, read_body
from loopkit.ops_http import HttpServer, ops_app
from loopkit_dev.natsserver import free_port


async def _ready() -> None:
    return None


def _router() -> APIRouter:
    router = APIRouter()

    @router.get("/port")
    async def port(request: Request) -> dict[str, int]:
        assert request.client is not None
        return {"port": request.client.port}  # the client's end of this connection

    @router.get("/crash")
    async def crash() -> None:
        raise RuntimeError("secret internals")

    @router.get("/database-down")
    async def database_down() -> None:
        # A real driver error: nothing listens on this port.
        engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    @router.get("/identity-down")
    async def identity_down() -> None:
        raise errors.DependencyUnavailable("identity service: UNAVAILABLE")

    @router.post("/json")
    async def echo(request: Request) -> dict[str, object]:
        raw = await read_body(request, 1 << 20)
        assert raw is not None
        return {"parsed": parse_json(raw)}

    @router.get("/held")
    async def held() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            # Runs once the response's start went to the server.
            HELD.started.set()
            await HELD.release.wait()
            yield b"the body"

        return StreamingResponse(body(), media_type="text/plain")

    return router


class _Held:
    started = asyncio.Event()
    release = asyncio.Event()


HELD = _Held()


@pytest_asyncio.fixture(loop_scope="session")
async def edge() -> AsyncIterator[str]:
    app = ops_app("probe", _ready)
    app.include_router(_router())
    server = HttpServer(app, "127.0.0.1", 0)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop()


async def test_an_unexpected_error_is_a_json_500_on_a_connection_that_stays_open(edge: str) -> None:
    async with httpx.AsyncClient(base_url=edge) as client:
        before = (await client.get("/port")).json()["port"]
        crashed = await client.get("/crash")
        after = (await client.get("/port")).json()["port"]
    assert crashed.status_code == 500
    assert crashed.json()["error"].startswith("internal error")
    assert "secret" not in crashed.text
    assert before == after  # the pooled connection was not dropped


@pytest.mark.parametrize("path", ["/database-down", "/identity-down"])
async def test_an_outage_is_503_with_retry_after(edge: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=edge) as client:
        before = (await client.get("/port")).json()["port"]
        answer = await client.get(path)
        after = (await client.get("/port")).json()["port"]
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["retry-after"]) > 0
    assert "retry" in answer.json()["error"]
    assert before == after


async def test_json_bodies_have_a_depth_limit_and_clear_reasons(edge: str) -> None:
    async with httpx.AsyncClient(base_url=edge) as client:
        deep = await client.post("/json", content=b"[" * 5000 + b"]" * 5000)
        brackets_in_strings = await client.post("/json", json={"s": "[[[[" * 100 + '\\"{'})
        not_json = await client.post("/json", content=b"{nope")
        not_utf8 = await client.post("/json", content=b'"\xff"')
    assert deep.status_code == 400
    assert deep.json() == {"error": "JSON nested deeper than 32 levels", "field": "body"}
    assert brackets_in_strings.status_code == 200
    assert not_json.status_code == 400 and not_json.json()["error"] == "body is not JSON"
    assert not_utf8.status_code == 400 and not_utf8.json()["error"] == "body is not UTF-8"


async def test_an_answers_head_goes_out_with_its_body_in_one_send(edge: str) -> None:
    """The status line and headers wait for the first body write (one send() per answer): while
    the app holds its body back, the client's socket has nothing to read, then both at once."""
    HELD.started, HELD.release = asyncio.Event(), asyncio.Event()
    port = int(edge.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_sendall(sock, b"GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
        await HELD.started.wait()
        # A send on loopback lands in the peer's buffer before it returns: a head written
        # apart from its body would be readable now.
        with pytest.raises(BlockingIOError):
            sock.recv(1, socket.MSG_PEEK)
        HELD.release.set()
        answer = b""
        while b"the body" not in answer:
            answer += await loop.sock_recv(sock, 4096)
        assert answer.startswith(b"HTTP/1.1 200")
    finally:
        sock.close()


async def test_a_head_request_is_answered(edge: str) -> None:
    """A HEAD answer has no body write to carry its head: it goes out alone, at once."""
    async with httpx.AsyncClient(base_url=edge, timeout=5) as client:
        answer = await client.head("/openapi.json")
        after = await client.get("/healthz")  # the kept-alive connection still serves
    assert answer.status_code == 200 and answer.content == b""
    assert after.status_code == 200


def test_json_depth_counts_nesting_only() -> None:
    assert json_depth(b"{}") == 1
    assert json_depth(b'{"a": [1, {"b": "]]]"}]}') == 3
    assert json_depth(b'["\\"[[["]') == 1
    assert json_depth(b"42") == 0
