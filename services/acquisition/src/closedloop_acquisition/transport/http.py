"""Public HTTP edges: H5 form submissions and the official account's server callback."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel

from closedloop_acquisition.catalog.specs import text
from closedloop_acquisition.clock import now
from closedloop_acquisition.leads.service import LeadInput
from closedloop_acquisition.pages.signin import SESSION_COOKIE
from closedloop_acquisition.transport.flows import Flows
from closedloop_acquisition.transport.pages import PageSignIn, pages_router
from loopkit.accounts import AccountRegistry
from loopkit.customers import IdentityValue
from loopkit.errors import (
    DependencyUnavailable,
    DomainError,
    InvalidArgument,
)
from loopkit.http_docs import (
    NO_CONTROL_CHARACTERS,
    TENANT_PATTERN,
    answers,
    json_body,
    string,
    text_answer,
    xml_body,
)
from loopkit.http_edge import (
    LeanHandler,
    LeanRoute,
    domain_error_response,
    error_response,
    parse_json,
    read_body,
    unavailable_response,
)
from loopkit.tenancy import require_tenant
from loopkit.tracing import current_context_headers
from loopkit.wechat.crypto import DecryptError, MessageCrypto, SignatureError, check_signature
from loopkit.wechat.xml import MAX_XML_BYTES, XmlError, build_message, parse_message

MAX_FORM_BYTES = 64 * 1024
# The documents of these edges (loopkit.http_docs); the parsers below are what they describe.
_FORM_TEXT = {"type": ["string", "number", "boolean"], "pattern": NO_CONTROL_CHARACTERS}
SUBMISSION_DOCS = {
    **json_body(
        {
            "type": "object",
            "additionalProperties": False,
            # A (non-empty) openid needs the app it belongs to.
            "if": {"required": ["openid"], "properties": {"openid": {"minLength": 1}}},
            "then": {"required": ["app_id"], "properties": {"app_id": {"minLength": 1}}},
            "properties": {
                "values": {"type": "object", "additionalProperties": _FORM_TEXT},
                "openid": string(256, "a claimed openid (unverified); needs app_id"),
                "app_id": string(256),
                "unionid": string(256, "a claimed unionid (unverified)"),
                "channel_id": string(256),
                "ref": string(64, "a referral code"),
                "parameters": {"type": "object", "additionalProperties": _FORM_TEXT},
                "region": string(100),
            },
        }
    ),
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "description": "a retry with the same key gets the first answer, without a new lead",
            "schema": string(128),
        },
        {
            "name": "x-tenant-id",
            "in": "header",
            "description": "look the page up in this tenant only",
            "schema": {"type": "string", "pattern": TENANT_PATTERN},
        },
    ],
}


class CapturedLeadAnswer(BaseModel):
    lead_id: str
    repeat: bool


SUBMISSION_ANSWERS = answers(
    {
        200: {"description": "a repeat of an earlier submission", "model": CapturedLeadAnswer},
        201: {"description": "a new lead", "model": CapturedLeadAnswer},
    },
    400,
    404,
    409,
    413,
    503,
)
_SIGNED_QUERY = [
    {"name": name, "in": "query", "schema": {"type": "string"}}
    for name in ("signature", "timestamp", "nonce")
]
CALLBACK_QUERY_DOCS = {
    "parameters": [*_SIGNED_QUERY, {"name": "echostr", "in": "query", "schema": {"type": "string"}}]
}
CALLBACK_DOCS = {
    **xml_body(
        {
            name: {"type": "string"}
            for name in ("ToUserName", "FromUserName", "CreateTime", "MsgType", "Event", "Encrypt")
        },
        "WeChat's `<xml>` message; in safe mode only `Encrypt` (and ToUserName)",
    ),
    "parameters": [
        *_SIGNED_QUERY,
        {"name": "msg_signature", "in": "query", "schema": {"type": "string"}},
        {
            "name": "encrypt_type",
            "in": "query",
            "schema": {"type": "string", "enum": ["raw", "aes"]},
        },
    ],
}


def _strings(value: Any, field: str) -> dict[str, str]:
    """An object of strings; numbers and booleans (as a browser may send them) become text."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument("must be an object of strings", field=field)
    out: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, bool):
            out[key] = "true" if item else "false"
        elif isinstance(item, str | int | float):
            out[key] = str(item)
        else:
            plain = key.isascii() and key.isidentifier()
            raise InvalidArgument("must be a string", field=f"{field}.{key}" if plain else field)
    return out


def _string(body: dict[str, Any], name: str, max_length: int = 256) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise InvalidArgument("must be a string", field=name)
    text(value, name, max_length=max_length)
    return value


def submission(page_id: str, body: dict[str, Any]) -> LeadInput:
    """A form submission's JSON body as a lead request:

    {"values": {field: value}, "openid": ..., "app_id": ..., "unionid": ..., "channel_id": ...,
     "ref": referral code, "parameters": {"utm_source": ...}, "region": ...}
    """
    known = {"values", "openid", "app_id", "unionid", "channel_id", "ref", "parameters", "region"}
    for name in body:
        if name not in known:
            raise InvalidArgument("unknown member of the submission", field=name)
    # Anyone can type a stranger's openid or unionid into a body or a link: these are claims,
    # sent to identity as unverified hints that never merge two customers. Verified WeChat
    # identities come only from the WeChat sign-in session (see `pages`).
    identities: list[IdentityValue] = []
    openid, app_id = _string(body, "openid"), _string(body, "app_id")
    if openid:
        if not app_id:
            raise InvalidArgument("an openid needs the app_id it belongs to", field="app_id")
        identities.append(
            IdentityValue(kind="wechat_openid", value=openid, scope=app_id, verified=False)
        )
    if unionid := _string(body, "unionid"):
        identities.append(IdentityValue(kind="wechat_unionid", value=unionid, verified=False))
    return LeadInput(
        page_id=page_id,
        values=_strings(body.get("values"), "values"),
        claims=tuple(identities),
        channel_id=_string(body, "channel_id"),
        referral_code=_string(body, "ref", 64),
        parameters=_strings(body.get("parameters"), "parameters"),
        region=_string(body, "region", 100),
    )


SUBMISSIONS_PATH = "/v1/forms/{page_id}/submissions"


def router(
    flows: Flows,
    accounts: AccountRegistry,
    wake_worker: Callable[[], None],
    sign_in: PageSignIn | None = None,
) -> APIRouter:
    """Every public HTTP route: the H5 page and its sign-in, its form, the WeChat callback."""
    routes = APIRouter()
    routes.include_router(pages_router(flows, sign_in))
    routes.include_router(_forms_router(form_submissions(flows, sign_in)))
    routes.include_router(_wechat_router(flows, accounts, wake_worker))
    return routes


def lean_routes(flows: Flows, sign_in: PageSignIn | None = None) -> list[LeanRoute]:
    """The form post, the hot path of a campaign spike, answered by the kit's edge middleware
    without FastAPI's routing (`loopkit.http_edge.LeanRoute`): the same handler as its route."""
    return [LeanRoute("POST", SUBMISSIONS_PATH, form_submissions(flows, sign_in))]


def form_submissions(flows: Flows, sign_in: PageSignIn | None = None) -> LeanHandler:
    """The handler of a landing page's form post. `sign_in`: the page's WeChat sign-in, whose
    session cookie carries verified identities."""
    signin = sign_in.signin if sign_in else None

    async def submit(request: Request, page_id: str) -> Response:
        raw = await read_body(request, MAX_FORM_BYTES)
        if raw is None:
            return error_response(413, f"body larger than {MAX_FORM_BYTES} bytes", "body")
        try:
            body = parse_json(raw)
        except DomainError as exc:
            return domain_error_response(exc)
        if not isinstance(body, dict):
            return error_response(400, "body must be a JSON object", "body")
        try:
            lead = submission(page_id[:64], body)
            # A retry with the same key (the browser lost the answer) gets the first answer.
            lead = replace(lead, request_id=request.headers.get("idempotency-key", ""))
            # The page names its tenant; a caller naming one sees only that tenant's pages.
            asked = request.headers.get("x-tenant-id")
            session = None
            if signin is not None:
                session = signin.read_session(request.cookies.get(SESSION_COOKIE), time.time())
            captured = await flows.capture_lead(
                require_tenant(asked) if asked else None, lead, session
            )
        except DomainError as exc:
            return domain_error_response(exc)
        except DependencyUnavailable:
            return unavailable_response("identity is unavailable")
        status = 200 if captured.repeat else 201
        return JSONResponse(
            {"lead_id": captured.lead.id, "repeat": captured.repeat}, status_code=status
        )

    return submit


def _forms_router(submit: LeanHandler) -> APIRouter:
    """The form post as a FastAPI route: its OpenAPI document, and the way in for an app built
    without the lean routes."""
    router = APIRouter()

    @router.post(
        SUBMISSIONS_PATH,
        response_model=None,
        summary="submit a landing page's form: captures a lead",
        responses=SUBMISSION_ANSWERS,
        openapi_extra=SUBMISSION_DOCS,
    )
    async def submit_form(page_id: str, request: Request) -> Response:
        return await submit(request, page_id)

    return router


def _wechat_router(
    flows: Flows,
    accounts: AccountRegistry,
    wake_worker: Callable[[], None],
) -> APIRouter:
    """The callbacks of the registry's official accounts that have a callback token."""
    router = APIRouter()

    @router.get(
        "/v1/wechat/{app_id}/callback",
        response_model=None,
        summary="WeChat's check of the server URL: echoes echostr when the signature holds",
        responses=answers({200: text_answer("the echostr")}, 403, 404),
        openapi_extra=CALLBACK_QUERY_DOCS,
    )
    async def verify(app_id: str, request: Request) -> Response:
        app = accounts.callback_app(app_id)
        if app is None:
            return error_response(404, f"no official account {app_id!r}", "app_id")
        q = request.query_params
        try:
            check_signature(
                app.token.get_secret_value(),
                q.get("signature", ""),
                q.get("timestamp", ""),
                q.get("nonce", ""),
            )
        except SignatureError as exc:
            return error_response(403, str(exc), "signature")
        return PlainTextResponse(q.get("echostr", ""))

    @router.post(
        "/v1/wechat/{app_id}/callback",
        response_model=None,
        summary="a signed message or event of an official account (plain or safe mode)",
        responses=answers(
            {
                200: {
                    "description": "`success`, or a passive reply message (XML, sealed in"
                    " safe mode)",
                    "content": {
                        "text/plain": {"schema": {"type": "string"}},
                        "application/xml": {"schema": {"type": "string"}},
                    },
                }
            },
            400,
            403,
            404,
            413,
            503,
        ),
        openapi_extra=CALLBACK_DOCS,
    )
    async def receive(app_id: str, request: Request) -> Response:
        app = accounts.callback_app(app_id)
        if app is None:
            return error_response(404, f"no official account {app_id!r}", "app_id")
        q = request.query_params
        timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
        raw = await read_body(request, MAX_XML_BYTES)
        if raw is None:
            return error_response(413, f"body larger than {MAX_XML_BYTES} bytes", "body")
        crypto: MessageCrypto | None = None
        try:
            if q.get("encrypt_type", "raw") == "aes":
                if not app.aes_key.get_secret_value():
                    return error_response(400, "this account is not in safe mode", "encrypt_type")
                crypto = MessageCrypto(
                    app.token.get_secret_value(), app.aes_key.get_secret_value(), app.app_id
                )
                outer = parse_message(raw)
                inner = crypto.open(
                    q.get("msg_signature", ""), timestamp, nonce, outer.get("Encrypt", "")
                )
                message = parse_message(inner)
            else:
                check_signature(
                    app.token.get_secret_value(), q.get("signature", ""), timestamp, nonce
                )
                message = parse_message(raw)
        except SignatureError as exc:
            return error_response(403, str(exc), "signature")
        except (XmlError, DecryptError) as exc:
            return error_response(400, str(exc), "body")
        try:
            accepted = await flows.tx(
                lambda s: flows.callbacks.accept(
                    s,
                    app.tenant_id,
                    app.app_id,
                    message,
                    now(),
                    trace_context=current_context_headers(),
                )
            )
        except DomainError as exc:
            return domain_error_response(exc)
        if not accepted.duplicate:
            wake_worker()
        if not accepted.reply:
            return PlainTextResponse("success")
        reply = build_message(
            {
                "ToUserName": message.get("FromUserName", ""),
                "FromUserName": message.get("ToUserName", ""),
                "CreateTime": int(time.time()),
                "MsgType": "text",
                "Content": accepted.reply,
            }
        )
        if crypto is not None:
            sealed = crypto.seal(reply.encode(), timestamp or str(int(time.time())), nonce)
            reply = build_message(dict(sealed))
        return Response(reply, media_type="application/xml")

    return router
