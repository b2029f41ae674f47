"""The H5 landing page at GET /p/{page_id}: the form a person opens after scanning a code."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_acquisition.capture.service import MAX_PARAMETERS
from closedloop_acquisition.models import LandingPageRow
from closedloop_acquisition.pages.render import (
    PageView,
    content_security_policy,
    render_message,
    render_page,
)
from closedloop_acquisition.transport.flows import Flows
from loopkit.db import is_unavailable
from loopkit.errors import DependencyUnavailable, NotFound

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


async def load_page(flows: Flows, page_id: str) -> LandingPageRow:
    """The page by its public id (its tenant is whoever owns it); NotFound otherwise."""

    async def load(session: AsyncSession) -> LandingPageRow:
        tenant = await flows.catalog.page_tenant(session, page_id)
        return await flows.catalog.get_landing_page(session, tenant, page_id)

    return await flows.read(load)


def pages_router(flows: Flows) -> APIRouter:
    router = APIRouter()

    @router.get("/p/{page_id}", response_model=None)
    async def page(page_id: str, request: Request) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        try:
            row = await load_page(flows, page_id[:64])
        except NotFound:
            return not_found(nonce)
        except DependencyUnavailable:
            return unavailable(nonce)
        except Exception as exc:
            if is_unavailable(exc):  # the database is away: a page that says so, not a 500
                return unavailable(nonce)
            raise
        view = PageView(
            page_id=row.id,
            title=row.title,
            fields=list(row.fields),
            extras=link_extras(request.query_params),
        )
        return html(render_page(view, nonce), nonce)

    return router
