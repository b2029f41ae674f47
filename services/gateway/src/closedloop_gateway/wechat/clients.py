"""wechatpy, adapted: its official-account, WeCom and OAuth clients pointed at the configured base
URLs, given their token by the gateway (never fetching one themselves), and run on a thread pool
off the event loop (wechatpy is synchronous, built on requests)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from wechatpy import WeChatClient as OfficialAccountClient
from wechatpy.client.base import BaseWeChatClient
from wechatpy.enterprise import WeChatClient as WecomClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.oauth import WeChatOAuth
from wechatpy.session import SessionStorage

from closedloop_gateway import metrics
from closedloop_gateway.wechat.errors import WeChatError, WeChatUnreachable
from loopkit.accounts import AccountRegistry, Credential, OfficialAccount

T = TypeVar("T")
log = logging.getLogger(__name__)
# urllib3 logs request lines (query strings with secrets and tokens) at DEBUG: never let it.
logging.getLogger("urllib3").setLevel(logging.WARNING)
logging.getLogger("wechatpy").setLevel(logging.WARNING)


class CallTokenStorage(SessionStorage):  # type: ignore[misc]
    """wechatpy's session storage, backed by the gateway's token table: the token the caller read
    through the TokenManager (the table's cache) for the call running in this thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def bind(self, token: str | None) -> None:
        self._local.token = token

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self._local, "token", None) or default

    def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        """Tokens are stored by the TokenManager under its lease, never by wechatpy."""

    def delete(self, key: str) -> None:
        """As for set: the table is the TokenManager's."""


class _NoSelfFetch:
    def fetch_access_token(self) -> Any:
        raise RuntimeError("access tokens are fetched by the gateway's TokenManager only")


class _OfficialAccountClient(_NoSelfFetch, OfficialAccountClient):  # type: ignore[misc]
    pass


class _WecomClient(_NoSelfFetch, WecomClient):  # type: ignore[misc]
    @property
    def access_token_key(self) -> str:
        return f"{self.corp_id}_access_token"  # wechatpy's own key embeds part of the secret


class _TimeoutSession(requests.Session):
    """A session whose every request has a timeout (wechatpy's token fetch and OAuth pass none)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().request(*args, **kwargs)


def _session(pool: int, timeout: float) -> requests.Session:
    http = _TimeoutSession(timeout)
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool, max_retries=0)
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    # Never through a proxy of the environment: the base URLs say where WeChat is.
    http.trust_env = False
    return http


class WeChatHttp:
    """One wechatpy client per account (holding no secret), and the threads they run on."""

    def __init__(
        self,
        registry: AccountRegistry,
        *,
        wechat_api_base: str,
        wechat_oauth_base: str,
        wecom_api_base: str,
        timeout_s: float,
        threads: int,
    ) -> None:
        self._wechat_api = wechat_api_base.rstrip("/") + "/"
        self._oauth = wechat_oauth_base.rstrip("/") + "/connect/"
        self._wecom_api = wecom_api_base.rstrip("/") + "/"
        self._timeout = timeout_s
        self._storage = CallTokenStorage()
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="wechat")
        self._threads = threads
        # Per account: the client of its API calls, and another only for fetching its token
        # (wechatpy's fetch sets an expiry on the client it runs on, which would make that client
        # try to fetch by itself later).
        self._clients: dict[str, BaseWeChatClient] = {}
        self._fetchers: dict[str, BaseWeChatClient] = {}
        for account in registry.credentials():
            self._clients[account.account_id] = self._client(account, self._storage)
            self._fetchers[account.account_id] = self._client(account, CallTokenStorage())

    def _client(self, account: Credential, storage: SessionStorage) -> BaseWeChatClient:
        client: BaseWeChatClient
        if isinstance(account, OfficialAccount):
            client = _OfficialAccountClient(
                account.app_id, "", session=storage, timeout=self._timeout, auto_retry=False
            )
            client.API_BASE_URL = self._wechat_api + "cgi-bin/"
        else:
            client = _WecomClient(
                account.corp_id, "", session=storage, timeout=self._timeout, auto_retry=False
            )
            client.API_BASE_URL = self._wecom_api + "cgi-bin/"
        client._http = _session(self._threads, self._timeout)
        return client

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self, api: str, work: Callable[[], T]) -> T:
        def guarded() -> T:
            try:
                return work()
            except WeChatClientException as exc:
                if exc.errcode is None:  # an HTTP error status, not a WeChat answer
                    status = getattr(exc.response, "status_code", "?")
                    raise WeChatUnreachable(api, f"HTTP {status}") from None
                raise WeChatError(api, int(exc.errcode), str(exc.errmsg or "")) from None
            except requests.RequestException as exc:
                raise WeChatUnreachable(api, type(exc).__name__) from None
            except ValueError as exc:  # an answer that is not JSON
                raise WeChatUnreachable(api, f"unreadable answer: {type(exc).__name__}") from None

        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._executor, guarded)
        except WeChatError as exc:
            metrics.api_call(api, str(exc.errcode))
            raise
        except WeChatUnreachable:
            metrics.api_call(api, "unreachable")
            raise
        metrics.api_call(api, "ok")
        return result

    async def call(self, account: Credential, token: str, api: str, fn: Callable[[Any], T]) -> T:
        """`fn(client)` in a worker thread with `token` as the client's access token."""
        client = self._clients[account.account_id]

        def work() -> T:
            self._storage.bind(token)
            try:
                return fn(client)
            finally:
                self._storage.bind(None)

        return await self._run(api, work)

    async def fetch(self, account: Credential) -> tuple[str, int]:
        """A new access token (the TokenManager's source; called only under the lease)."""
        client = self._fetchers[account.account_id]
        secret = account.secret.get_secret_value()
        if isinstance(account, OfficialAccount):
            url = self._wechat_api + "cgi-bin/token"
            params = {"grant_type": "client_credential", "appid": account.app_id, "secret": secret}
        else:
            url = self._wecom_api + "cgi-bin/gettoken"
            params = {"corpid": account.corp_id, "corpsecret": secret}
        result = await self._run("token", lambda: client._fetch_access_token(url, params))
        return str(result["access_token"]), int(result.get("expires_in", 7200))

    def oauth(self, account: OfficialAccount, redirect_uri: str, scope: str, state: str) -> Any:
        client = WeChatOAuth(
            account.app_id, account.app_secret.get_secret_value(), redirect_uri, scope, state
        )
        client.API_BASE_URL = self._wechat_api
        client.OAUTH_BASE_URL = self._oauth
        client._http = _session(2, self._timeout)
        return client

    def authorize_url(
        self, account: OfficialAccount, redirect_uri: str, scope: str, state: str
    ) -> str:
        return str(self.oauth(account, redirect_uri, scope, state).authorize_url)

    async def exchange_code(self, account: OfficialAccount, code: str) -> dict[str, Any]:
        client = self.oauth(account, "", "snsapi_base", "")
        return await self._run(
            "sns/oauth2/access_token", lambda: dict(client.fetch_access_token(code))
        )
