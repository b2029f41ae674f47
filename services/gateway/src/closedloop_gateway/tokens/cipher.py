"""Access tokens at rest: encrypted with a key derived from their app's secret, so a copy of
the gateway's database alone gives no usable token (and a rotated secret simply forces a fetch)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

_CONTEXT = b"closedloop-gateway-access-token\x00"


def _fernet(secret: SecretStr) -> Fernet:
    digest = hashlib.sha256(_CONTEXT + secret.get_secret_value().encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(secret: SecretStr, token: str) -> str:
    return _fernet(secret).encrypt(token.encode()).decode()


def unseal(secret: SecretStr, sealed: str) -> str | None:
    """The token, or None when there is none or it was sealed under another secret."""
    if not sealed:
        return None
    try:
        return _fernet(secret).decrypt(sealed.encode()).decode()
    except InvalidToken:
        return None
