"""Signed unsubscribe tokens (pure): the token names the tenant, customer and channel and carries
an HMAC-SHA256 of them under the service's secret, so a link works only for the customer it was
made for and nobody can forge one for a stranger. Tokens do not expire: an unsubscribe link in
an old message must still work."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

_CONTEXT = b"closedloop-retention-unsubscribe-v1"


class BadToken(ValueError):
    """The token is malformed or its signature does not match."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, _CONTEXT + b"." + body, hashlib.sha256).digest()[:16]


def sign(secret: bytes, tenant: str, customer_id: str, channel: str) -> str:
    body = json.dumps([tenant, customer_id, channel], separators=(",", ":")).encode()
    return f"{_b64(body)}.{_b64(_mac(secret, body))}"


def verify(secret: bytes, token: str) -> tuple[str, str, str]:
    """(tenant, customer_id, channel) of a token this service signed; BadToken otherwise."""
    try:
        body_part, mac_part = token.split(".", 1)
        body, mac = _unb64(body_part), _unb64(mac_part)
    except (ValueError, TypeError) as exc:
        raise BadToken("malformed token") from exc
    if not hmac.compare_digest(mac, _mac(secret, body)):
        raise BadToken("the token's signature does not match")
    try:
        tenant, customer_id, channel = json.loads(body)
    except (ValueError, TypeError) as exc:
        raise BadToken("malformed token") from exc
    if not all(isinstance(v, str) for v in (tenant, customer_id, channel)):
        raise BadToken("malformed token")
    return tenant, customer_id, channel
