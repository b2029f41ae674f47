"""The public unsubscribe link: GET /u/{token} shows what the link does and a button, POST
/u/{token} opts the customer out. A GET never changes anything (mail scanners and link previews
fetch links); a forged or damaged token is a 404 that names nobody."""

from __future__ import annotations

import html
import logging

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from closedloop_retention.clock import now
from closedloop_retention.consent.service import ConsentService
from loopkit.db import is_unavailable
from loopkit.errors import NotFound
from loopkit.http_docs import answers, text_answer
from loopkit.uow import UnitOfWork

log = logging.getLogger(__name__)
MAX_TOKEN = 600
_CHANNEL_NAMES = {
    "": "all marketing messages",
    "wechat_openid": "messages from our WeChat official account",
    "wecom_external_userid": "messages from our WeCom advisers",
    "mini_program_openid": "mini program messages",
}
_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;"
        "padding:0 1rem}button{font-size:1.1rem;padding:.6rem 1.2rem}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    response = HTMLResponse(document, status_code=status, headers=_HEADERS)
    if status == 503:
        response.headers["retry-after"] = "5"
    return response


def _not_found() -> HTMLResponse:
    return _page("Link not valid", "<p>This unsubscribe link is not valid.</p>", 404)


def _unavailable() -> HTMLResponse:
    return _page("Please try again", "<p>This cannot be done just now.</p>", 503)


class UnsubscribeHttp:
    def __init__(self, uow: UnitOfWork, consent: ConsentService) -> None:
        self._uow = uow
        self._consent = consent

    def router(self) -> APIRouter:
        router = APIRouter()
        page = text_answer("an HTML page", "text/html")
        router.add_api_route(
            "/u/{token}",
            self.confirm,
            methods=["GET"],
            response_model=None,
            summary="an unsubscribe link: asks the customer to confirm",
            responses={**answers({200: page}, 404, 503, media_type="text/html")},
        )
        router.add_api_route(
            "/u/{token}",
            self.unsubscribe,
            methods=["POST"],
            response_model=None,
            summary="an unsubscribe link confirmed: the customer opts out",
            responses={**answers({200: page}, 404, 503, media_type="text/html")},
        )
        return router

    async def confirm(self, token: str) -> HTMLResponse:
        if len(token) > MAX_TOKEN:
            return _not_found()
        try:
            _, _, channel = self._consent.read_token(token)
        except NotFound:
            return _not_found()
        what = _CHANNEL_NAMES.get(channel, "these messages")
        return _page(
            "Unsubscribe",
            f"<p>Stop receiving {html.escape(what)}?</p>"
            f'<form method="post" action="/u/{html.escape(token)}">'
            '<button type="submit">Unsubscribe</button></form>',
        )

    async def unsubscribe(self, token: str) -> HTMLResponse:
        if len(token) > MAX_TOKEN:
            return _not_found()
        try:
            _, channel, _ = await self._uow.run(
                lambda s: self._consent.unsubscribe(s, token, now=now())
            )
        except NotFound:
            return _not_found()
        except Exception as exc:
            if is_unavailable(exc):
                log.warning("unsubscribe: database unavailable: %s", exc)
                return _unavailable()
            raise
        what = _CHANNEL_NAMES.get(channel, "these messages")
        return _page(
            "You are unsubscribed", f"<p>You will no longer receive {html.escape(what)}.</p>"
        )
