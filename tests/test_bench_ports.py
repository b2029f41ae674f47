"""The benches' children on chosen ports (bench/_common.py): a port another process takes between
the choice and the child's bind (made certain here by taking it first) costs a restart on new
ports, not the run; and a child counts as started only once it listens itself, not when whoever
took the port answers."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import _common  # noqa: E402
from _common import ChildProcess, PortTaken, echo_argv, listens  # noqa: E402

import loopkit_dev.natsserver  # noqa: E402


@pytest.fixture
def taken() -> Iterator[list[socket.socket]]:
    """Sockets listening on ports a child was meant to get (closed at the end)."""
    held: list[socket.socket] = []
    yield held
    for s in held:
        s.close()


def _take(port: int, held: list[socket.socket]) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.listen()
    held.append(s)


def _echo_starter(tmp_path: Path, held: list[socket.socket]) -> tuple[list[list[int]], object]:
    tried: list[list[int]] = []

    def start(ports: list[int]) -> ChildProcess:
        if not tried:
            _take(ports[0], held)  # another process got there first
        tried.append(ports)
        return ChildProcess(
            "echo", echo_argv(*ports), log_path=tmp_path / "echo.log", env={}, cwd=REPO
        )

    return tried, start


async def test_a_child_whose_port_was_taken_starts_again_on_new_ports(
    tmp_path: Path, taken: list[socket.socket]
) -> None:
    tried, start = _echo_starter(tmp_path, taken)
    child, ports = await _common.start_on_free_ports("echo", 2, start)  # type: ignore[arg-type]
    try:
        assert len(tried) == 2 and ports == tried[1]
        assert all(listens(child.proc.pid, p) for p in ports)
        assert not listens(child.proc.pid, tried[0][0])  # the test's socket, not the child's
        await _common.wait_echo(f"127.0.0.1:{ports[1]}", child)
    finally:
        child.stop()


async def test_without_a_new_start_the_taken_port_fails_the_run(
    tmp_path: Path, taken: list[socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the benches did before: one start on the chosen ports; the taken one ends it (and
    the test's socket, listening there, is not mistaken for the child)."""
    monkeypatch.setattr(_common, "START_ATTEMPTS", 1)
    tried, start = _echo_starter(tmp_path, taken)
    with pytest.raises(PortTaken):
        await _common.start_on_free_ports("echo", 2, start)  # type: ignore[arg-type]
    assert len(tried) == 1


async def test_nats_server_whose_port_was_taken_starts_on_another(
    tmp_path: Path, taken: list[socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen: list[int] = []
    free_port = loopkit_dev.natsserver.free_port

    def first_one_taken() -> int:
        port = free_port()
        if not chosen:
            _take(port, taken)
        chosen.append(port)
        return port

    monkeypatch.setattr(loopkit_dev.natsserver, "free_port", first_one_taken)
    server = await _common.start_nats(tmp_path / "nats", sync_always=False)
    try:
        assert len(chosen) == 2 and server.port == chosen[1]
        assert server.process is not None and listens(server.process.pid, server.port)
    finally:
        server.stop()
