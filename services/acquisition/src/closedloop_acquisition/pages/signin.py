"""The H5 page's WeChat sign-in, as signed tokens (pure: no transport, no clock of its own).

- The *session* is what a browser holds after web authorization: the tenant, the official
  account, and the openid/unionid WeChat gave for this person, signed (HMAC-SHA256) and short
  lived. It travels in an HttpOnly cookie; a form submission trusts only what it carries.
- The *state* goes to WeChat and comes back on the callback. It names the page and a nonce; the
  same nonce sits in a short-lived cookie of the browser that started the sign-in, so a callback
  made in another browser (a login CSRF: someone's code planted on a victim) is refused. The
  cookie also keeps the link's query (channel, ref, utm...) across the round trip.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from closedloop_acquisition.wechat import WebIdentity
from loopkit.customers import IdentityValue

SESSION_COOKIE = "cl_wechat"
STATE_COOKIE = "cl_signin"
MAX_TOKEN = 4096


class BadToken(Exception):
    """A token that was tampered with, expired, or made for something else."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """HMAC-SHA256 tokens, each bound to a purpose so one kind can never pass as another."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the signing secret needs at least 16 bytes")
        self._secret = secret

    def _mac(self, purpose: str, body: str) -> str:
        digest = hmac.new(self._secret, f"{purpose}|{body}".encode(), hashlib.sha256).digest()
        return _b64(digest)

    def sign(self, purpose: str, payload: dict[str, Any]) -> str:
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{self._mac(purpose, body)}"

    def open(self, purpose: str, token: str, now: float) -> dict[str, Any]:
        if not token or len(token) > MAX_TOKEN or token.count(".") != 1:
            raise BadToken("malformed")
        body, mac = token.split(".")
        if not hmac.compare_digest(mac, self._mac(purpose, body)):
            raise BadToken("bad signature")
        try:
            payload = json.loads(_unb64(body))
        except ValueError:
            raise BadToken("malformed") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int | float):
            raise BadToken("malformed")
        if payload["exp"] <= now:
            raise BadToken("expired")
        return payload

    def state(self, page_id: str, nonce: str) -> str:
        """The OAuth `state`: short (WeChat allows 128 characters), bound to page and nonce."""
        return f"{nonce}.{self._mac('state', f'{page_id}|{nonce}')[:27]}"

    def check_state(self, page_id: str, state: str) -> str:
        """The nonce of a state made for this page; BadToken otherwise."""
        nonce, _, mac = state.partition(".")
        expected = self._mac("state", f"{page_id}|{nonce}")[:27]
        if not nonce or not hmac.compare_digest(mac, expected):
            raise BadToken("bad state")
        return nonce


@dataclass(frozen=True)
class WebSession:
    tenant_id: str
    app_id: str
    openid: str
    unionid: str

    def identities(self) -> tuple[IdentityValue, ...]:
        """WeChat's own word on who this is: verified."""
        found = [
            IdentityValue(kind="wechat_openid", value=self.openid, scope=self.app_id, verified=True)
        ]
        if self.unionid:
            found.append(IdentityValue(kind="wechat_unionid", value=self.unionid, verified=True))
        return tuple(found)


@dataclass(frozen=True)
class PendingSignIn:
    """A sign-in on its way through WeChat: its nonce and the link's query to restore."""

    nonce: str
    query: str


class SignIn:
    def __init__(self, signer: Signer, *, session_ttl_s: int, signin_ttl_s: int = 600) -> None:
        self._signer = signer
        self.session_ttl_s = session_ttl_s
        self.signin_ttl_s = signin_ttl_s

    def begin(self, page_id: str, query: str, now: float) -> tuple[str, str]:
        """(state for WeChat, value of the browser's sign-in cookie)."""
        nonce = secrets.token_urlsafe(16)
        cookie = self._signer.sign(
            "signin",
            {"p": page_id, "n": nonce, "q": query[:2000], "exp": int(now) + self.signin_ttl_s},
        )
        return self._signer.state(page_id, nonce), cookie

    def finish(self, page_id: str, state: str, cookie: str, now: float) -> PendingSignIn:
        """The sign-in this browser started for this page; BadToken for anything else."""
        nonce = self._signer.check_state(page_id, state)
        pending = self._signer.open("signin", cookie, now)
        if pending.get("p") != page_id or not hmac.compare_digest(str(pending.get("n")), nonce):
            raise BadToken("the sign-in was started elsewhere")
        return PendingSignIn(nonce=nonce, query=str(pending.get("q", "")))

    def session(self, tenant_id: str, who: WebIdentity, now: float) -> str:
        return self._signer.sign(
            "session",
            {
                "t": tenant_id,
                "a": who.app_id,
                "o": who.openid,
                "u": who.unionid,
                "exp": int(now) + self.session_ttl_s,
            },
        )

    def read_session(self, cookie: str | None, now: float) -> WebSession | None:
        """The browser's verified session, or None (absent, expired, forged)."""
        if not cookie:
            return None
        try:
            data = self._signer.open("session", cookie, now)
        except BadToken:
            return None
        fields = (data.get("t"), data.get("a"), data.get("o"), data.get("u", ""))
        if not all(isinstance(f, str) for f in fields) or not (fields[0] and fields[2]):
            return None
        tenant, app, openid, unionid = (str(f) for f in fields)
        return WebSession(tenant_id=tenant, app_id=app, openid=openid, unionid=unionid)
