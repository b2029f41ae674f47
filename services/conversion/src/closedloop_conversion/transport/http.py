"""HTTP edges: the WeCom contact callback and the chat archive import."""

from __future__ import annotations

import asyncio
import hmac
import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from closedloop_conversion import metrics
from closedloop_conversion.common import now
from closedloop_conversion.ownership.changes import ChangeType, parse_change
from closedloop_conversion.ownership.contacts import customer_of_new_contact
from closedloop_conversion.ownership.service import OwnershipService
from closedloop_conversion.ownership.views import WelcomeJob
from closedloop_conversion.ownership.welcome import send_welcome
from closedloop_conversion.pipeline.followups import MAX_BATCH, FollowUpService
from closedloop_conversion.settings import ConversionSettings
from loopkit import errors
from loopkit.callers import KeyStore
from loopkit.customers import CustomerDirectory
from loopkit.http_docs import API_KEY, TENANT_PATTERN, answers, json_body, text_answer, xml_body
from loopkit.http_edge import (
    domain_error_response,
    error_response,
    parse_json,
    read_body,
    unavailable_response,
)
from loopkit.tenancy import require_tenant
from loopkit.uow import UnitOfWork
from loopkit.wechat.crypto import DecryptError, MessageCrypto, SignatureError
from loopkit.wechat.sender import MessageSender
from loopkit.wechat.wecom import ContactLookup
from loopkit.wechat.xml import MAX_XML_BYTES, XmlError, parse_message

log = logging.getLogger(__name__)
MAX_ARCHIVE_BYTES = 4 * 1024 * 1024
ARCHIVE_BODY = json_body(
    {
        "type": "object",
        "required": ["messages"],
        "properties": {
            "messages": {
                "type": "array",
                "maxItems": MAX_BATCH,
                "description": "archived messages (msgid, from, tolist, msgtime, content…);"
                " each is stored or rejected on its own, by index, in the answer",
                # Any value: a malformed message is a rejection in the answer, not a 400.
                "items": {},
            }
        },
    }
)


class RejectedMessage(BaseModel):
    index: int
    reason: str
    field: str | None


class ArchiveImport(BaseModel):
    stored: int
    duplicates: int
    rejected: list[RejectedMessage]


class ConversionHttp:
    def __init__(
        self,
        settings: ConversionSettings,
        uow: UnitOfWork,
        *,
        directory: CustomerDirectory,
        ownership: OwnershipService,
        follow_ups: FollowUpService,
        sender: MessageSender,
        contacts: ContactLookup | None = None,
    ) -> None:
        self._settings = settings
        # The corps' callback token, EncodingAESKey and tenant, from the shared account registry.
        self._accounts = settings.account_registry()
        self._uow = uow
        self._directory = directory
        self._ownership = ownership
        self._follow_ups = follow_ups
        self._sender = sender
        self._contacts = contacts
        self._tasks: set[asyncio.Task[None]] = set()
        self._keys = KeyStore(settings.api_keys_file) if settings.api_keys_file else None

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route(
            "/v1/wecom/{corp_id}/callback",
            self.verify,
            methods=["GET"],
            summary="WeCom's check of the callback URL: the decrypted echostr",
            responses=answers({200: text_answer("the decrypted echostr")}, 400, 403, 404),
        )
        router.add_api_route(
            "/v1/wecom/{corp_id}/callback",
            self.callback,
            methods=["POST"],
            summary="a signed, encrypted contact change (friend added, deleted, transferred)",
            responses=answers({200: text_answer("`success`")}, 400, 403, 404, 503),
            openapi_extra=xml_body(
                {"ToUserName": {"type": "string"}, "Encrypt": {"type": "string"}},
                "WeCom's `<xml>` envelope; the change itself is sealed in `Encrypt`",
            ),
        )
        router.add_api_route(
            "/v1/tenants/{tenant_id}/chat-archive",
            self.import_archive,
            methods=["POST"],
            summary="import archived chat messages (needs a write API key for the tenant)",
            response_model=ArchiveImport,
            responses=answers({}, 400, 401, 403, 413, 503),
            openapi_extra={**API_KEY, **ARCHIVE_BODY},
        )
        return router

    def _crypto(self, corp_id: str) -> tuple[str, MessageCrypto] | None:
        corp = self._accounts.callback_corp(corp_id)
        if corp is None:
            return None
        crypto = MessageCrypto(
            corp.token.get_secret_value(), corp.aes_key.get_secret_value(), corp.corp_id
        )
        return corp.tenant_id, crypto

    async def verify(
        self,
        corp_id: str,
        msg_signature: str = "",
        timestamp: str = "",
        nonce: str = "",
        echostr: str = "",
    ) -> Response:
        """WeCom's URL check: the decrypted echostr proves we hold the token and key."""
        found = self._crypto(corp_id)
        if found is None:
            return error_response(404, "unknown corp", "corp_id")
        _, crypto = found
        try:
            plain = crypto.open(msg_signature, timestamp, nonce, echostr)
        except SignatureError as exc:
            return error_response(403, str(exc), "msg_signature")
        except DecryptError as exc:
            return error_response(400, str(exc), "echostr")
        return PlainTextResponse(plain.decode(errors="replace"))

    async def callback(
        self,
        corp_id: str,
        request: Request,
        msg_signature: str = "",
        timestamp: str = "",
        nonce: str = "",
    ) -> Response:
        received_at = now()
        found = self._crypto(corp_id)
        if found is None:
            return error_response(404, "unknown corp", "corp_id")
        tenant, crypto = found
        try:
            raw = await read_body(request, MAX_XML_BYTES)
            if raw is None:
                raise XmlError(f"body larger than {MAX_XML_BYTES} bytes")
            outer = parse_message(raw)
            encrypted = outer.get("Encrypt", "")
            if not encrypted:
                return error_response(400, "Encrypt is required", "Encrypt")
            inner = parse_message(crypto.open(msg_signature, timestamp, nonce, encrypted))
            change = parse_change(corp_id, inner)
        except SignatureError as exc:
            return error_response(403, str(exc), "msg_signature")
        except (DecryptError, XmlError) as exc:
            return error_response(400, str(exc), "body")
        except errors.DomainError as exc:
            return domain_error_response(exc)
        if change is None:
            return PlainTextResponse("success")
        customer_id = ""
        if change.change_type is ChangeType.ADD:
            try:
                change, customer_id = await customer_of_new_contact(
                    self._directory, self._contacts, tenant, change
                )
            except errors.DomainError as exc:
                return domain_error_response(exc)
            except errors.DependencyUnavailable as exc:
                # WeCom retries the callback; the duplicate check keeps it to one effect.
                return unavailable_response(str(exc))
        try:
            outcome = await self._uow.run(
                lambda s: self._ownership.apply_change(s, tenant, change, customer_id)
            )
        except errors.DomainError as exc:
            return domain_error_response(exc)
        log.info("wecom %s %s: %s", corp_id, change.change_type, outcome.note)
        if outcome.welcome is not None:
            task = asyncio.create_task(self._welcome(outcome.welcome, received_at))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return PlainTextResponse("success")

    async def _welcome(self, job: WelcomeJob, received_at: datetime) -> None:
        try:
            result = await send_welcome(self._sender, job, received_at)
            metrics.welcome_latency.record(result.latency_ms / 1000, {"status": result.status})
            await self._uow.run(
                lambda s: self._ownership.record_welcome(
                    s, job.tenant_id, job.ownership_id, result.status, result.latency_ms
                )
            )
            if result.status != "sent":
                log.warning("welcome message %s: %s", result.status, result.detail)
        except Exception:
            log.exception("welcome message for %s failed", job.ownership_id)

    async def import_archive(
        self, tenant_id: Annotated[str, Path(pattern=TENANT_PATTERN)], request: Request
    ) -> Response:
        """A batch of archived chat messages: good ones stored once, bad ones reported by index."""
        token = self._settings.api_token
        given = request.headers.get("authorization", "")
        shared = f"Bearer {token.get_secret_value()}" if token is not None else None
        if self._keys is None and shared is not None and not hmac.compare_digest(given, shared):
            return error_response(401, "a valid bearer token is required", "authorization")
        try:
            tenant = require_tenant(tenant_id)
            if self._keys is not None:  # per-tenant keys: a write key for this tenant
                self._keys.authorize(given, tenant, "ImportChatArchive")
        except errors.DomainError as exc:
            return domain_error_response(exc)
        body = await read_body(request, MAX_ARCHIVE_BYTES)
        if body is None:
            return error_response(413, f"body larger than {MAX_ARCHIVE_BYTES} bytes", "messages")
        try:
            payload = parse_json(body)
        except errors.DomainError as exc:
            return domain_error_response(exc)
        messages = payload.get("messages") if isinstance(payload, dict) else None
        if not isinstance(messages, list):
            return error_response(400, "messages must be a list", "messages")
        try:
            result = await self._uow.run(
                lambda s: self._follow_ups.import_chat(s, tenant, messages)
            )
        except errors.DomainError as exc:
            return domain_error_response(exc)
        return JSONResponse(
            {
                "stored": result.stored,
                "duplicates": result.duplicates,
                "rejected": [
                    {"index": r.index, "reason": r.reason, "field": r.field}
                    for r in result.rejected
                ],
            }
        )


def router(
    settings: ConversionSettings,
    uow: UnitOfWork,
    *,
    directory: CustomerDirectory,
    ownership: OwnershipService,
    follow_ups: FollowUpService,
    sender: MessageSender,
    contacts: ContactLookup | None = None,
) -> APIRouter:
    """The public routes: the WeCom contact callback and the chat archive import."""
    edge = ConversionHttp(
        settings,
        uow,
        directory=directory,
        ownership=ownership,
        follow_ups=follow_ups,
        sender=sender,
        contacts=contacts,
    )
    return edge.router()
