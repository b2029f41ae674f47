"""The gateway over gRPC, as the services call it: a `MessageSender`, a `ContactLookup` and
`CustomerTransfers` (loopkit.wechat.sender / loopkit.wechat.wecom), and acquisition's channel
codes and web authorization (loopkit.wechat.codes).

A send is a durable command at the gateway: `SendMessage` stores it under the message's key and
answers at once (QUEUED), so the same key again is the same send and nothing goes out twice. The
client can wait a little for the outcome (a welcome message must be known within WeCom's 20 s);
a send still queued then is the gateway's to finish, and its outcome is published as
`message.sent` / `message.failed`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc
from pydantic import SecretStr

from closedloop.gateway.v1 import gateway_pb2 as gw
from closedloop.gateway.v1 import gateway_pb2_grpc
from loopkit import errors
from loopkit.grpc_client import make_channel, translate_error
from loopkit.timestamps import from_ts, now
from loopkit.wechat.codes import SCOPE_USERINFO, ContactWay, QrCode, WebIdentity
from loopkit.wechat.sender import MAX_BATCH, OutboundMessage, SendReceipt, SendRefused
from loopkit.wechat.wecom import ExternalContact, HandoverAnswer, HandoverResult, HandoverStatus

SERVICE = "closedloop.gateway.v1.GatewayService"
# SendMessage and TransferCustomers are safe to repeat: the idempotency key makes a repeat the
# same request. So are a second QR ticket for the same scene (harmless), a URL (only built) and a
# contact way deleted twice (gone). Never repeated: CreateContactWay (two codes) and a code
# exchange (WeChat's codes work once).
_RETRIED = [
    (SERVICE, m)
    for m in (
        "SendMessage",
        "SendMessages",
        "GetSend",
        "GetExternalContact",
        "TransferCustomers",
        "GetTransferResult",
        "CreateQrCode",
        "BuildOAuthUrl",
        "DeleteContactWay",
    )
]
DEPENDENCY = "gateway"
# For codes and web authorization: our token refused, or a conflict at the gateway, is an outage
# of the gateway to the caller's caller (UNAVAILABLE), never a refusal passed on: they did
# nothing wrong.
_CODE_OUTAGES = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.ABORTED)

_TRANSFER_STATUS = {
    gw.TRANSFER_STATUS_ACCEPTED: HandoverStatus.ACCEPTED,
    gw.TRANSFER_STATUS_WAITING: HandoverStatus.WAITING,
    gw.TRANSFER_STATUS_REFUSED: HandoverStatus.REFUSED,
    gw.TRANSFER_STATUS_TAKEOVER_LIMIT: HandoverStatus.TAKEOVER_LIMIT,
    gw.TRANSFER_STATUS_NO_RECORD: HandoverStatus.NO_RECORD,
}
_PENDING = {gw.SEND_STATUS_QUEUED: "queued", gw.SEND_STATUS_PAUSED: "paused"}


def send_request(message: OutboundMessage) -> gw.SendMessageRequest:
    """The gateway's command for a message, chosen by its kind and where it goes.

    welcome -> WecomWelcome (params: welcome_code); to an external_userid -> WecomMsgTemplate, the
    rep's 1:1 broadcast (params: sender, the rep's WeCom user id; see `send` when missing); to an
    openid: template (or any message with params template_id) -> OfficialAccountTemplate (params
    url, data.<keyword>; without data the content goes in `content`), else a customer-service
    OfficialAccountText. The identity's scope is the app_id / corp_id.
    """
    if not message.key:
        raise ValueError("a message sent through the gateway needs an idempotency key")
    request = gw.SendMessageRequest(
        tenant_id=message.tenant_id,
        idempotency_key=message.key,
        customer_id=message.customer_id,
    )
    to, params = message.recipient, message.params
    if message.kind == "welcome":
        request.wecom_welcome.CopyFrom(
            gw.WecomWelcome(
                corp_id=to.scope,
                welcome_code=params.get("welcome_code", ""),
                text=message.content,
            )
        )
    elif to.kind == "wecom_external_userid":
        request.wecom_msg_template.CopyFrom(
            gw.WecomMsgTemplate(
                corp_id=to.scope,
                sender_userid=params.get("sender", ""),
                external_userids=[to.value],
                text=message.content,
            )
        )
    elif to.kind == "wechat_openid" and (message.kind == "template" or "template_id" in params):
        data = {k.removeprefix("data."): v for k, v in params.items() if k.startswith("data.")}
        request.official_account_template.CopyFrom(
            gw.OfficialAccountTemplate(
                app_id=to.scope,
                openid=to.value,
                template_id=params.get("template_id", ""),
                url=params.get("url", ""),
                data=data or {"content": message.content},
            )
        )
    elif to.kind == "wechat_openid":
        request.official_account_text.CopyFrom(
            gw.OfficialAccountText(app_id=to.scope, openid=to.value, text=message.content)
        )
    else:
        raise SendRefused(f"WeChat cannot reach a {to.kind} identity")
    return request


class GatewayClient:
    """The gateway's sends, contact lookups and transfers; gRPC errors come back as domain errors
    (a send the gateway rejects as SendRefused), an unreachable gateway as DependencyUnavailable."""

    def __init__(
        self, channel: grpc.aio.Channel, *, outcome_wait_s: float = 0.0, poll_s: float = 0.05
    ) -> None:
        self._channel = channel
        self._stub = gateway_pb2_grpc.GatewayServiceStub(channel)  # type: ignore[no-untyped-call]
        self._outcome_wait_s = outcome_wait_s
        self._poll_s = poll_s

    @classmethod
    def connect(
        cls,
        target: str,
        *,
        timeout_s: float = 5.0,
        api_token: SecretStr | None = None,
        outcome_wait_s: float = 0.0,
    ) -> GatewayClient:
        """A client of the gateway at `target`; `send` waits up to `outcome_wait_s` for WeChat's
        answer before it returns a queued receipt."""
        channel = make_channel(
            target,
            idempotent=_RETRIED,
            default_timeout_s=timeout_s,
            api_token=api_token.get_secret_value() if api_token else None,
        )
        return cls(channel, outcome_wait_s=outcome_wait_s)

    async def close(self) -> None:
        await self._channel.close()

    # --- MessageSender ---------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendReceipt:
        """Hands the message to the gateway. SENT -> a receipt; FAILED -> SendRefused (the
        gateway has given the key up for good: the same key would only return the same failure);
        still QUEUED / PAUSED after the wait -> a receipt with that status."""
        request = send_request(message)
        if request.WhichOneof("message") == "wecom_msg_template":
            await self._with_sender(request.tenant_id, request.wecom_msg_template)
        return await self._submit(request)

    async def notify_member(
        self,
        tenant_id: str,
        corp_id: str,
        userid: str,
        text: str,
        *,
        key: str,
        wait_s: float = 1.0,
    ) -> SendReceipt:
        """A text to a member of the corp (a rep), from the corp's application (message/send);
        as `send`, but waiting at most `wait_s` for the outcome: the same key is the same
        message (ask again later for its outcome), FAILED -> SendRefused (so is a corp without
        an application), still held at the gateway -> a queued / paused receipt."""
        if not key:
            raise ValueError("a message sent through the gateway needs an idempotency key")
        request = gw.SendMessageRequest(
            tenant_id=tenant_id,
            idempotency_key=key,
            wecom_member_text=gw.WecomMemberText(corp_id=corp_id, userid=userid, text=text),
        )
        return await self._submit(request, min(wait_s, self._outcome_wait_s))

    async def _submit(
        self, request: gw.SendMessageRequest, wait_s: float | None = None
    ) -> SendReceipt:
        wait_s = self._outcome_wait_s if wait_s is None else wait_s
        metadata = _tenant(request.tenant_id)
        try:
            answer = await self._stub.SendMessage(request, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            error = translate_error(exc, DEPENDENCY)
            if isinstance(error, errors.DomainError):
                raise SendRefused(str(error)) from None
            raise error from None
        send = answer.send
        if send.status in _PENDING and wait_s > 0:
            send = await self._outcome(request.tenant_id, send, wait_s)
        if send.status == gw.SEND_STATUS_FAILED:
            raise SendRefused(f"WeChat errcode {send.errcode}: {send.errmsg}".strip())
        created = from_ts(send.created_at, send.HasField("created_at")) or now()
        sent_at = from_ts(send.sent_at, send.HasField("sent_at"))
        return SendReceipt(
            message_id=send.send_id,
            sent_at=sent_at or created,
            duplicate=not answer.created,
            status=_PENDING.get(send.status, "sent"),
        )

    async def send_many(
        self, messages: Sequence[OutboundMessage]
    ) -> list[SendReceipt | SendRefused]:
        """Hands one tenant's messages to the gateway in `SendMessages` calls of up to MAX_BATCH
        (a broadcast's page: one call, not one per recipient), without waiting for WeChat. Per
        message, in order: a receipt (queued, or as the gateway holds it), or SendRefused for
        one the gateway refused or had given up. The gateway unreachable raises
        DependencyUnavailable for the batch (stored items are found again by their keys)."""
        if not messages:
            return []
        tenant_id = messages[0].tenant_id
        if any(m.tenant_id != tenant_id for m in messages):
            raise ValueError("send_many takes the messages of one tenant")
        results: list[SendReceipt | SendRefused | None] = [None] * len(messages)
        requests: list[tuple[int, gw.SendMessageRequest]] = []
        for i, message in enumerate(messages):
            try:
                request = send_request(message)
                if request.WhichOneof("message") == "wecom_msg_template":
                    await self._with_sender(tenant_id, request.wecom_msg_template)
            except SendRefused as exc:
                results[i] = exc
                continue
            requests.append((i, request))
        for start in range(0, len(requests), MAX_BATCH):
            page = requests[start : start + MAX_BATCH]
            batch = gw.SendMessagesRequest(tenant_id=tenant_id, sends=[r for _, r in page])
            try:
                answer = await self._stub.SendMessages(batch, metadata=_tenant(tenant_id))
            except grpc.aio.AioRpcError as exc:
                error = translate_error(exc, DEPENDENCY)
                if not isinstance(error, errors.DomainError):
                    raise error from None
                for i, _ in page:
                    results[i] = SendRefused(str(error))
                continue
            for (i, _), result in zip(page, answer.results, strict=True):
                results[i] = _receipt_or_refusal(result)
        return [r if r is not None else SendRefused("not sent") for r in results]

    async def _with_sender(self, tenant_id: str, broadcast: gw.WecomMsgTemplate) -> None:
        """A rep's broadcast names the rep; a caller that does not know who holds the contact
        (retention keeps no WeCom user ids) gets the rep WeCom lists for it (follow_user)."""
        if broadcast.sender_userid:
            return
        external_userid = broadcast.external_userids[0]
        try:
            contact = await self.external_contact(tenant_id, broadcast.corp_id, external_userid)
        except errors.DomainError as exc:
            raise SendRefused(f"no rep to send from: {exc}") from None
        if not contact.follow_userids:
            raise SendRefused(f"no rep has {external_userid} as a friend")
        broadcast.sender_userid = contact.follow_userids[0]

    async def _outcome(self, tenant_id: str, send: gw.Send, wait_s: float) -> gw.Send:
        """The send once it is SENT or FAILED, or as it stands when the wait is over."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        pause = self._poll_s
        request = gw.GetSendRequest(tenant_id=tenant_id, send_id=send.send_id)
        metadata = _tenant(tenant_id)
        while send.status in _PENDING and loop.time() + pause < deadline:
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)
            try:
                send = (await self._stub.GetSend(request, metadata=metadata)).send
            except grpc.aio.AioRpcError:
                break  # the send is stored at the gateway: it goes out without us watching
        return send

    # --- ContactLookup ---------------------------------------------------------------------

    async def external_contact(
        self, tenant_id: str, corp_id: str, external_userid: str
    ) -> ExternalContact:
        request = gw.GetExternalContactRequest(
            tenant_id=tenant_id, corp_id=corp_id, external_userid=external_userid
        )
        try:
            answer = await self._stub.GetExternalContact(request, metadata=_tenant(tenant_id))
        except grpc.aio.AioRpcError as exc:
            raise translate_error(exc, DEPENDENCY) from None
        return ExternalContact(
            corp_id=answer.corp_id,
            external_userid=answer.external_userid,
            unionid=answer.unionid,
            name=answer.name,
            wechat_user=answer.type == gw.EXTERNAL_CONTACT_TYPE_WECHAT,
            follow_userids=tuple(answer.follow_userids),
        )

    # --- Channel codes and web authorization (acquisition's WechatGateway) -----------------

    async def create_qr_code(
        self, tenant_id: str, app_id: str, scene: str, expire_seconds: int
    ) -> QrCode:
        """A parametric QR code; expire_seconds 0 = permanent."""
        request = gw.CreateQrCodeRequest(
            tenant_id=tenant_id, app_id=app_id, scene_str=scene, expire_seconds=expire_seconds
        )
        try:
            answer = await self._stub.CreateQrCode(request, metadata=_tenant(tenant_id))
        except grpc.aio.AioRpcError as exc:
            raise _code_error(exc) from None
        return QrCode(
            app_id=answer.app_id,
            ticket=answer.ticket,
            url=answer.url,
            image_url=answer.image_url,
            expires_at=from_ts(answer.expires_at, answer.HasField("expires_at")),
        )

    async def create_contact_way(
        self, tenant_id: str, corp_id: str, state: str, user_ids: list[str], skip_verify: bool
    ) -> ContactWay:
        request = gw.CreateContactWayRequest(
            tenant_id=tenant_id,
            corp_id=corp_id,
            state=state,
            user_ids=user_ids,
            skip_verify=skip_verify,
        )
        try:
            answer = await self._stub.CreateContactWay(request, metadata=_tenant(tenant_id))
        except grpc.aio.AioRpcError as exc:
            raise _code_error(exc) from None
        return ContactWay(
            corp_id=answer.corp_id, config_id=answer.config_id, qr_code=answer.qr_code
        )

    async def delete_contact_way(self, tenant_id: str, corp_id: str, config_id: str) -> None:
        request = gw.DeleteContactWayRequest(
            tenant_id=tenant_id, corp_id=corp_id, config_id=config_id
        )
        try:
            await self._stub.DeleteContactWay(request, metadata=_tenant(tenant_id))
        except grpc.aio.AioRpcError as exc:
            raise _code_error(exc) from None

    async def build_oauth_url(
        self, tenant_id: str, app_id: str, redirect_uri: str, scope: str, state: str
    ) -> str:
        """The authorize page; it comes back to redirect_uri?code=...&state=..."""
        request = gw.BuildOAuthUrlRequest(
            tenant_id=tenant_id,
            app_id=app_id,
            redirect_uri=redirect_uri,
            scope=gw.OAUTH_SCOPE_USERINFO if scope == SCOPE_USERINFO else gw.OAUTH_SCOPE_BASE,
            state=state,
        )
        try:
            answer = await self._stub.BuildOAuthUrl(request, metadata=_tenant(tenant_id))
        except grpc.aio.AioRpcError as exc:
            raise _code_error(exc) from None
        return str(answer.url)

    async def exchange_oauth_code(self, tenant_id: str, app_id: str, code: str) -> WebIdentity:
        """InvalidArgument for a bad or used code."""
        request = gw.ExchangeOAuthCodeRequest(tenant_id=tenant_id, app_id=app_id, code=code)
        try:
            answer = await self._stub.ExchangeOAuthCode(request, metadata=_tenant(tenant_id))
        except grpc.aio.AioRpcError as exc:
            raise _code_error(exc) from None
        return WebIdentity(app_id=answer.app_id, openid=answer.openid, unionid=answer.unionid)

    # --- CustomerTransfers -----------------------------------------------------------------

    async def transfer(
        self,
        tenant_id: str,
        corp_id: str,
        handover_userid: str,
        takeover_userid: str,
        external_userids: Sequence[str],
        *,
        resigned: bool,
        idempotency_key: str,
    ) -> list[HandoverAnswer]:
        request = gw.TransferCustomersRequest(
            tenant_id=tenant_id,
            corp_id=corp_id,
            handover_userid=handover_userid,
            takeover_userid=takeover_userid,
            external_userids=list(external_userids),
            resigned=resigned,
            idempotency_key=idempotency_key,
        )
        try:
            answer = await self._stub.TransferCustomers(request, metadata=_tenant(tenant_id))
        except grpc.aio.AioRpcError as exc:
            raise translate_error(exc, DEPENDENCY) from None
        return [HandoverAnswer(c.external_userid, c.errcode) for c in answer.customers]

    async def transfer_results(
        self,
        tenant_id: str,
        corp_id: str,
        handover_userid: str,
        takeover_userid: str,
        *,
        resigned: bool,
    ) -> list[HandoverResult]:
        request = gw.GetTransferResultRequest(
            tenant_id=tenant_id,
            corp_id=corp_id,
            handover_userid=handover_userid,
            takeover_userid=takeover_userid,
            resigned=resigned,
        )
        try:
            answer = await self._stub.GetTransferResult(request, metadata=_tenant(tenant_id))
        except grpc.aio.AioRpcError as exc:
            raise translate_error(exc, DEPENDENCY) from None
        return [
            HandoverResult(
                c.external_userid,
                _TRANSFER_STATUS.get(c.status, HandoverStatus.NO_RECORD),
                from_ts(c.takeover_time, c.HasField("takeover_time")),
            )
            for c in answer.customers
        ]


def _receipt_or_refusal(result: gw.SendMessageResult) -> SendReceipt | SendRefused:
    if result.error_code:
        name = _STATUS_BY_NUMBER.get(result.error_code, grpc.StatusCode.UNKNOWN)
        return SendRefused(f"{name.name}: {result.error_message}")
    send = result.send
    if send.status == gw.SEND_STATUS_FAILED:
        return SendRefused(f"WeChat errcode {send.errcode}: {send.errmsg}".strip())
    created = from_ts(send.created_at, send.HasField("created_at")) or now()
    sent_at = from_ts(send.sent_at, send.HasField("sent_at"))
    return SendReceipt(
        message_id=send.send_id,
        sent_at=sent_at or created,
        duplicate=not result.created,
        status=_PENDING.get(send.status, "sent"),
    )


_STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def _code_error(exc: grpc.aio.AioRpcError) -> Exception:
    return translate_error(exc, DEPENDENCY, outages=_CODE_OUTAGES)


def _tenant(tenant_id: str) -> list[tuple[str, str]]:
    return [("x-tenant-id", tenant_id)]
