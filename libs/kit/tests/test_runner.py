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
