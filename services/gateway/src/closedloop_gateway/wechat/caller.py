"""Every WeChat API call of the gateway goes through `WeChatCaller.call`: paced and counted under
the account's quota, with the account's current token, refreshed once and retried on a token
error, and an over-limit answer turned into a pause (QuotaPaused) rather than a silent drop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from closedloop_gateway.quotas.service import Quotas
from closedloop_gateway.tokens.manager import TokenManager
from closedloop_gateway.wechat.clients import WeChatHttp
from closedloop_gateway.wechat.errors import TOKEN_ERRCODES, WeChatError
from loopkit.accounts import Credential

T = TypeVar("T")


class WeChatCaller:
    def __init__(self, http: WeChatHttp, tokens: TokenManager, quotas: Quotas) -> None:
        self.http = http
        self.tokens = tokens
        self.quotas = quotas

    async def call(self, account: Credential, api: str, fn: Callable[[Any], T]) -> T:
        """`fn(client)` for `api`; raises WeChatError, WeChatUnreachable or QuotaPaused."""
        await self.quotas.acquire(account.account_id, api)
        token = await self.tokens.current(account)
        try:
            return await self.http.call(account, token.value, api, fn)
        except WeChatError as exc:
            if exc.errcode not in TOKEN_ERRCODES:
                raise await self._over_limit(account, exc) from None
            # WeChat refused the token (expired early, or replaced by a refresh elsewhere).
            token = await self.tokens.rejected(account, token)
        await self.quotas.acquire(account.account_id, api)
        try:
            return await self.http.call(account, token.value, api, fn)
        except WeChatError as exc:
            raise await self._over_limit(account, exc) from None

    async def _over_limit(self, account: Credential, exc: WeChatError) -> Exception:
        if self.quotas.is_over_limit(exc.errcode):
            return await self.quotas.over_limit(
                account.account_id, exc.api, exc.errcode, exc.errmsg
            )
        return exc
