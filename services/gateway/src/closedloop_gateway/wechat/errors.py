"""What a WeChat call can end in, without wechatpy's or requests' types (whose messages carry
URLs with secrets and tokens in their query strings)."""

from __future__ import annotations

import re

# The token was invalid, expired or is not an access token: refresh once and retry.
TOKEN_ERRCODES = frozenset({40001, 42001, 40014})
# "System busy, try again later."
BUSY_ERRCODE = -1

_SECRET_PARAMS = re.compile(r"((?:secret|corpsecret|access_token|code)=)[^&\s'\"]+", re.I)


def scrub(text: str) -> str:
    """The text with any secret, token or code query parameter masked."""
    return _SECRET_PARAMS.sub(r"\1***", text)


class WeChatError(Exception):
    """WeChat answered with a non-zero errcode."""

    def __init__(self, api: str, errcode: int, errmsg: str) -> None:
        self.api = api
        self.errcode = errcode
        self.errmsg = scrub(errmsg)[:300]
        super().__init__(f"{api}: WeChat errcode {errcode}: {self.errmsg}")

    @property
    def transient(self) -> bool:
        return self.errcode == BUSY_ERRCODE


class WeChatUnreachable(Exception):
    """No answer (network, timeout, HTTP error status): worth retrying."""

    def __init__(self, api: str, reason: str) -> None:
        self.api = api
        self.reason = scrub(reason)[:300]
        super().__init__(f"{api}: WeChat unreachable: {self.reason}")
