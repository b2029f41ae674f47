"""Share links must point where customers can open them: a pod binds every address (0.0.0.0),
which no browser can reach, so the public base URL is required there and checked for shape."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from closedloop_referral import SPEC
from closedloop_referral.settings import ReferralSettings
from loopkit.settings import load_settings


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> ReferralSettings:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(SPEC, ReferralSettings)
    assert isinstance(settings, ReferralSettings)
    return settings


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_server_bound_to_every_address_needs_the_public_base_url(
    monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        _settings(monkeypatch, CLOSEDLOOP_HTTP_HOST=host)
    assert "CLOSEDLOOP_REFERRAL_PUBLIC_BASE_URL is required" in str(refused.value)


def test_the_shared_setting_the_chart_sets_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(
        monkeypatch,
        CLOSEDLOOP_HTTP_HOST="0.0.0.0",
        CLOSEDLOOP_PUBLIC_BASE_URL="https://wx.example.com",
    )
    assert settings.public_base_url == "https://wx.example.com"


@pytest.mark.parametrize(
    "url", ["wx.example.com", "ftp://wx.example.com", "https://", "http://0.0.0.0:8085"]
)
def test_a_base_url_that_no_browser_can_open_is_refused(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        _settings(
            monkeypatch, CLOSEDLOOP_HTTP_HOST="0.0.0.0", CLOSEDLOOP_REFERRAL_PUBLIC_BASE_URL=url
        )
    assert "CLOSEDLOOP_REFERRAL_PUBLIC_BASE_URL" in str(refused.value)


def test_the_public_base_url_is_taken_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(
        monkeypatch,
        CLOSEDLOOP_HTTP_HOST="0.0.0.0",
        CLOSEDLOOP_REFERRAL_PUBLIC_BASE_URL="https://wx.example.com",
    )
    assert settings.public_base_url == "https://wx.example.com"


def test_a_local_run_on_a_specific_address_may_leave_it_empty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CLOSEDLOOP_REFERRAL_PUBLIC_BASE_URL", raising=False)
    assert _settings(monkeypatch, CLOSEDLOOP_HTTP_HOST="127.0.0.1").public_base_url == ""
