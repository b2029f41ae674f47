"""The page's WeChat sign-in tokens: a session or a state is good only as it was made."""

from __future__ import annotations

import pytest

from closedloop_acquisition.pages.signin import BadToken, Signer, SignIn
from closedloop_acquisition.wechat import WebIdentity

NOW = 1_800_000_000.0
WHO = WebIdentity(app_id="wx-app", openid="o-1", unionid="u-1")


def _signin(secret: bytes = b"s" * 32) -> SignIn:
    return SignIn(Signer(secret), session_ttl_s=600)


def test_a_session_carries_wechats_identities_as_verified_until_it_expires() -> None:
    signin = _signin()
    cookie = signin.session("t-1", WHO, NOW)
    session = signin.read_session(cookie, NOW + 599)
    assert session is not None and session.tenant_id == "t-1"
    assert [(i.kind, i.value, i.scope, i.verified) for i in session.identities()] == [
        ("wechat_openid", "o-1", "wx-app", True),
        ("wechat_unionid", "u-1", "", True),
    ]
    assert signin.read_session(cookie, NOW + 600) is None


def test_a_tampered_forged_or_foreign_session_is_no_session() -> None:
    signin = _signin()
    cookie = signin.session("t-1", WHO, NOW)
    body, mac = cookie.split(".")
    forged = _signin(b"x" * 32).session("t-1", WHO, NOW)
    # Another kind of token signed with the same secret is not a session either.
    _, pending = signin.begin("PAGE1", "", NOW)
    for bad in (
        f"{body}x.{mac}",
        f"{body}.{mac[:-2]}AA",
        forged,
        pending,
        "",
        "...",
        "a" * 5000,
    ):
        assert signin.read_session(bad, NOW) is None, bad


def test_a_state_comes_back_only_to_its_page_in_the_browser_that_started_it() -> None:
    signin = _signin()
    state, cookie = signin.begin("PAGE1", "channel_id=C1&utm_source=poster", NOW)
    assert len(state) <= 128  # WeChat's limit
    pending = signin.finish("PAGE1", state, cookie, NOW + 10)
    assert pending.query == "channel_id=C1&utm_source=poster"
    other_state, other_cookie = signin.begin("PAGE1", "", NOW)
    with pytest.raises(BadToken):
        signin.finish("PAGE2", state, cookie, NOW)  # another page
    with pytest.raises(BadToken):
        signin.finish("PAGE1", state, other_cookie, NOW)  # another browser's sign-in
    with pytest.raises(BadToken):
        signin.finish("PAGE1", other_state + "x", other_cookie, NOW)  # altered state
    with pytest.raises(BadToken):
        signin.finish("PAGE1", state, "", NOW)  # no cookie at all
    with pytest.raises(BadToken):
        signin.finish("PAGE1", state, cookie, NOW + signin.signin_ttl_s)  # too late


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        Signer(b"short")
