"""The H5 landing page at GET /p/{page_id}: the form a person opens after scanning a code."""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from closedloop_acquisition.catalog.views import LandingPageView
from closedloop_acquisition.inputs import MAX_PARAMETERS
from closedloop_acquisition.pages.render import (
    PageView,
    content_security_policy,
    render_message,
    render_page,
)
from closedloop_acquisition.pages.signin import (
    SESSION_COOKIE,
    STATE_COOKIE,
    BadToken,
    SignIn,
    WebSession,
)
from closedloop_acquisition.transport.flows import Flows
from closedloop_acquisition.wechat import SCOPE_BASE, SCOPE_USERINFO, WechatGateway
from loopkit.db import is_unavailable
from loopkit.errors import DependencyUnavailable, DomainError, NotFound
from loopkit.http_docs import answers, redirect, text_answer

log = logging.getLogger(__name__)

# Link parameters with a meaning of their own; any other plain one is an attribution parameter.
_CLAIMS = ("openid", "app_id", "appid", "unionid")
_RESERVED = frozenset(("channel_id", "ref", "code", "state", *_CLAIMS))
_PARAM_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def html(body: str, nonce: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        body,
        status_code=status,
        headers={
            "content-security-policy": content_security_policy(nonce),
            "cache-control": "no-store",
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
        },
    )


def not_found(nonce: str) -> HTMLResponse:
    return html(
        render_message("Page not found", "This page does not exist or has been removed.", nonce),
        nonce,
        404,
    )


def unavailable(nonce: str) -> HTMLResponse:
    response = html(
        render_message("Please try again", "This page cannot be shown just now.", nonce),
        nonce,
        503,
    )
    response.headers["retry-after"] = "5"
    return response


def link_extras(query: Mapping[str, str]) -> dict[str, Any]:
    """What the link carries into the submission. An openid or unionid in a link is only a
    claim: it goes along as an unverified hint (the submissions endpoint never trusts it)."""
    extras: dict[str, Any] = {}
    for name in ("channel_id", "ref"):
        if query.get(name):
            extras[name] = query[name][:256]
    app_id = query.get("app_id") or query.get("appid") or ""
    if query.get("openid") and app_id:
        extras["openid"], extras["app_id"] = query["openid"][:256], app_id[:256]
    if query.get("unionid"):
        extras["unionid"] = query["unionid"][:256]
    parameters = {
        name: value[:500]
        for name, value in query.items()
        if name not in _RESERVED and _PARAM_NAME.match(name)
    }
    if parameters:
        extras["parameters"] = dict(list(parameters.items())[:MAX_PARAMETERS])
    return extras


async def load_page(flows: Flows, page_id: str) -> LandingPageView:
    """The page by its public id (its tenant is whoever owns it); NotFound otherwise."""
    return await flows.read(lambda s: flows.catalog.public_page(s, page_id))


def is_wechat(request: Request) -> bool:
    """WeChat's (and WeCom's) in-app browser: the only one web authorization works in."""
    return "MicroMessenger" in request.headers.get("user-agent", "")


class PageSignIn:
    """The page's WeChat web authorization: gateway, signed tokens, and where we are reached."""

    def __init__(self, gateway: WechatGateway, signin: SignIn, public_url: str) -> None:
        self.gateway = gateway
        self.signin = signin
        self._public_url = public_url.rstrip("/")

    def base_url(self, request: Request) -> str:
        return self._public_url or str(request.base_url).rstrip("/")

    def secure(self, request: Request) -> bool:
        return self.base_url(request).startswith("https://")

    def needed(self, row: LandingPageView, session: WebSession | None) -> bool:
        if row.sign_in == "none":
            return False
        if session is None or session.tenant_id != row.tenant_id:
            return True
        return bool(row.app_id) and session.app_id != row.app_id


async def _page_or_answer(flows: Flows, page_id: str, nonce: str) -> LandingPageView | HTMLResponse:
    """The page, or the HTML page to answer instead (404, or 503 while the database is away)."""
    try:
        return await load_page(flows, page_id[:64])
    except NotFound:
        return not_found(nonce)
    except DependencyUnavailable:
        return unavailable(nonce)
    except Exception as exc:
        if is_unavailable(exc):  # the database is away: a page that says so, not a 500
            return unavailable(nonce)
        raise


def _render(
    row: LandingPageView, query: Mapping[str, str], signed_in: bool, nonce: str
) -> HTMLResponse:
    view = PageView(
        page_id=row.id,
        title=row.title,
        fields=list(row.fields),
        extras=link_extras(query),
        signed_in=signed_in,
    )
    return html(render_page(view, nonce), nonce)


async def _to_wechat(
    sign_in: PageSignIn, row: LandingPageView, request: Request, now: float
) -> Response | None:
    """The redirect to WeChat's authorization page, with the browser's sign-in cookie; None
    when the gateway cannot build it (the form still works without WeChat's word)."""
    state, pending = sign_in.signin.begin(row.id, request.url.query, now)
    scope = SCOPE_USERINFO if row.sign_in == "userinfo" else SCOPE_BASE
    back = f"{sign_in.base_url(request)}/p/{row.id}/oauth"
    try:
        url = await sign_in.gateway.build_oauth_url(row.tenant_id, row.app_id, back, scope, state)
    except (DependencyUnavailable, DomainError) as exc:
        log.warning("page %s served without WeChat sign-in: %s", row.id, exc)
        return None
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(
        STATE_COOKIE,
        pending,
        max_age=sign_in.signin.signin_ttl_s,
        path=f"/p/{row.id}",
        httponly=True,
        samesite="lax",
        secure=sign_in.secure(request),
    )
    response.headers["cache-control"] = "no-store"
    return response


async def _signed_in(
    sign_in: PageSignIn, row: LandingPageView, request: Request, nonce: str
) -> Response:
    """WeChat sent the browser back: check the state against the browser's cookie, exchange
    the code, set the session cookie, and return to the page with the link's query."""
    q = request.query_params
    now = time.time()
    try:
        pending = sign_in.signin.finish(
            row.id, q.get("state", ""), request.cookies.get(STATE_COOKIE, ""), now
        )
    except BadToken:
        return failed_sign_in(row.id, nonce, 400)
    response: Response
    if not q.get("code"):
        # The person declined (snsapi_userinfo): the form, without WeChat's word.
        response = _render(row, dict(parse_qsl(pending.query)), False, nonce)
    else:
        try:
            who = await sign_in.gateway.exchange_oauth_code(
                row.tenant_id, row.app_id, q["code"][:256]
            )
        except DependencyUnavailable:
            return unavailable(nonce)
        except DomainError:  # a used or made-up code
            return failed_sign_in(row.id, nonce, 400)
        target = f"/p/{row.id}" + (f"?{pending.query}" if pending.query else "")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            sign_in.signin.session(row.tenant_id, who, now),
            max_age=sign_in.signin.session_ttl_s,
            path="/",
            httponly=True,
            samesite="lax",
            secure=sign_in.secure(request),
        )
    response.delete_cookie(STATE_COOKIE, path=f"/p/{row.id}")
    response.headers["cache-control"] = "no-store"
    return response


def pages_router(flows: Flows, sign_in: PageSignIn | None = None) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/p/{page_id}",
        response_model=None,
        summary="the landing page (HTML); inside WeChat it may first send the visitor to sign in",
        responses=answers(
            {
                200: text_answer("the page and its form", "text/html"),
                302: redirect("to WeChat's sign-in, which comes back to /p/{page_id}/oauth"),
            },
            404,
            503,
            media_type="text/html",
        ),
    )
    async def page(page_id: str, request: Request) -> Response:
        nonce = secrets.token_urlsafe(16)
        row = await _page_or_answer(flows, page_id, nonce)
        if isinstance(row, Response):
            return row
        if sign_in is None:
            return _render(row, request.query_params, False, nonce)
        now = time.time()
        session = sign_in.signin.read_session(request.cookies.get(SESSION_COOKIE), now)
        if is_wechat(request) and sign_in.needed(row, session):
            redirect = await _to_wechat(sign_in, row, request, now)
            if redirect is not None:
                return redirect
            session = None
        return _render(row, request.query_params, session is not None, nonce)

    @router.get(
        "/p/{page_id}/oauth",
        response_model=None,
        summary="where WeChat's sign-in comes back: sets the session, back to the page",
        responses=answers(
            {
                200: text_answer("the page, when the visitor declined to sign in", "text/html"),
                303: redirect("back to the page, signed in"),
            },
            400,
            404,
            503,
            media_type="text/html",
        ),
        openapi_extra={
            "parameters": [
                {"name": name, "in": "query", "schema": {"type": "string"}}
                for name in ("code", "state")
            ]
        },
    )
    async def oauth_return(page_id: str, request: Request) -> Response:
        nonce = secrets.token_urlsafe(16)
        if sign_in is None:
            return not_found(nonce)
        row = await _page_or_answer(flows, page_id, nonce)
        if isinstance(row, Response):
            return row
        return await _signed_in(sign_in, row, request, nonce)

    return router


def failed_sign_in(page_id: str, nonce: str, status: int) -> HTMLResponse:
    return html(
        render_message(
            "Sign-in did not work",
            "This sign-in link is invalid or has expired. Please open the page again.",
            nonce,
            link=(f"/p/{page_id}", "Open the page again"),
        ),
        nonce,
        status,
    )
