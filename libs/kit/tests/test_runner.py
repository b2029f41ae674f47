"""`make run`'s wiring of the listed services to one another."""

from __future__ import annotations

import os
import sys

import pytest

from loopkit_dev.runner import load_services, point_at_gateway, settings_for


def test_services_with_a_gateway_url_setting_are_pointed_at_the_gateway(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLOSEDLOOP_GATEWAY_GRPC_PORT", "59056")
    monkeypatch.setenv("CLOSEDLOOP_RETENTION_GATEWAY_URL", "gw.elsewhere:50056")
    monkeypatch.delenv("CLOSEDLOOP_CONVERSION_GATEWAY_URL", raising=False)
    monkeypatch.delenv("CLOSEDLOOP_IDENTITY_GATEWAY_URL", raising=False)
    planned = [(s, d, settings_for(d)) for s, d in load_services()]
    assert "gateway" in [s.name for s, _, _ in planned]
    point_at_gateway(planned)
    assert os.environ["CLOSEDLOOP_CONVERSION_GATEWAY_URL"] == "127.0.0.1:59056"
    # What the environment already says wins; services without the setting are left alone.
    assert os.environ["CLOSEDLOOP_RETENTION_GATEWAY_URL"] == "gw.elsewhere:50056"
    assert "CLOSEDLOOP_IDENTITY_GATEWAY_URL" not in os.environ


def test_closedloop_run_without_the_dev_kit_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from loopkit import cli

    # As in a service image: the dev kit is not installed.
    monkeypatch.setitem(sys.modules, "loopkit_dev.runner", None)
    assert cli.main(["run"]) == 2
    assert "make install" in capsys.readouterr().err


def test_the_readiness_probe_says_not_ready_when_something_else_answers_on_the_port() -> None:
    # A port handed to two programs once made make run's probe meet a non-HTTP answer and stop
    # the run with a traceback instead of waiting.
    import socket
    import threading
    from types import SimpleNamespace
    from typing import Any, cast

    from loopkit_dev.runner import _ready

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def answer_garbage() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(1024)
                conn.sendall(b"\x00\x00\x12\x04 not http at all\r\n\r\n")

    threading.Thread(target=answer_garbage, daemon=True).start()
    child = SimpleNamespace(http_url=f"http://127.0.0.1:{port}", grpc_target=f"127.0.0.1:{port}")
    try:
        assert _ready(cast(Any, child)) is False
    finally:
        listener.close()


def test_a_stop_grace_that_is_not_a_positive_number_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from loopkit.operator import PlatformError
    from loopkit_dev.runner import stop_grace_s

    monkeypatch.setenv("CLOSEDLOOP_STOP_GRACE_S", "soon")
    with pytest.raises(PlatformError, match="CLOSEDLOOP_STOP_GRACE_S"):
        stop_grace_s()
    monkeypatch.setenv("CLOSEDLOOP_STOP_GRACE_S", "45")
    assert stop_grace_s() == 45.0
