"""Public HTTP: share links. `GET /r/{code}` records the visit and redirects to the landing page."""

from __future__ import annotations

import html
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_referral import metrics
from closedloop_referral.clock import now
from closedloop_referral.programs.service import ProgramService
from closedloop_referral.programs.views import VisitResult
from loopkit.errors import NotFound
from loopkit.http_docs import answers, redirect
from loopkit.tracing import span_from_headers
from loopkit.uow import UnitOfWork

DEVICE_COOKIE = "cl_device"
_COOKIE_MAX_AGE = 400 * 86400
_NOT_FOUND_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Link not found</title></head>"
    "<body><h1>This share link does not exist</h1><p>{code}</p></body></html>"
)


def share_router(uow: UnitOfWork, programs: ProgramService) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/r/{code}",
        response_model=None,
        summary="a share link: records the visit and redirects to the landing page",
        responses={
            **answers(
                {302: redirect("to the program's landing page, with the share's attribution")},
                404,
                media_type="text/html",
            ),
            **answers({}, 503),
        },
    )
    async def open_share_link(
        code: str,
        request: Request,
        *,
        openid: str = "",
        appid: str = "",
        s: str = "",
        device: str = "",
    ) -> Response:
        """The visitor's openid and appid come from WeChat OAuth when opened inside WeChat;
        otherwise a device hint: the `device` parameter or this service's cookie."""
        device_id = device or request.cookies.get(DEVICE_COOKIE, "")
        new_cookie = ""
        if not device_id and not openid:
            device_id = new_cookie = secrets.token_urlsafe(16)

        async def work(session: AsyncSession) -> VisitResult:
            return await programs.record_visit(
                session,
                code[:32],
                openid=openid,
                appid=appid,
                device_id=device_id,
                share_id=s,
                at=now(),
            )

        # The visit starts (or continues) the trace the newcomer's touch and lead carry on.
        try:
            with span_from_headers(
                "GET /r/{code}",
                request.headers,
                kind=SpanKind.SERVER,
                attributes={"http.route": "/r/{code}"},
            ):
                result = await uow.run(work)
        except NotFound:
            page = _NOT_FOUND_PAGE.format(code=html.escape(code[:32]))
            return HTMLResponse(page, status_code=404)
        metrics.visit(result.program_active)
        response = RedirectResponse(result.redirect_url, status_code=302)
        if new_cookie:
            response.set_cookie(
                DEVICE_COOKIE, new_cookie, max_age=_COOKIE_MAX_AGE, httponly=True, samesite="lax"
            )
        return response

    return router
