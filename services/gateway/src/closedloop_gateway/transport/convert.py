"""Protobuf <-> domain for the gateway API."""

from __future__ import annotations

from closedloop.gateway.v1 import gateway_pb2 as pb
from closedloop_gateway.models import SendRow
from closedloop_gateway.operations.service import (
    CustomerTransferResult,
    ExternalContact,
    QrCode,
)
from closedloop_gateway.quotas.service import ApiQuotaView
from closedloop_gateway.sends.model import (
    FAILED,
    KIND_PB,
    PAUSED,
    QUEUED,
    SENDING,
    SENT,
    NewSend,
)
from loopkit.errors import InvalidArgument
from loopkit.timestamps import ts

_TRANSFER_STATUS = {
    1: pb.TRANSFER_STATUS_ACCEPTED,
    2: pb.TRANSFER_STATUS_WAITING,
    3: pb.TRANSFER_STATUS_REFUSED,
    4: pb.TRANSFER_STATUS_TAKEOVER_LIMIT,
    5: pb.TRANSFER_STATUS_NO_RECORD,
}
_CONTACT_TYPE = {1: pb.EXTERNAL_CONTACT_TYPE_WECHAT, 2: pb.EXTERNAL_CONTACT_TYPE_WECOM}


def qr_code_to_pb(code: QrCode) -> pb.CreateQrCodeResponse:
    return pb.CreateQrCodeResponse(
        app_id=code.app_id,
        ticket=code.ticket,
        url=code.url,
        image_url=code.image_url,
        expires_at=ts(code.expires_at),
    )


def external_contact_to_pb(contact: ExternalContact) -> pb.GetExternalContactResponse:
    return pb.GetExternalContactResponse(
        corp_id=contact.corp_id,
        external_userid=contact.external_userid,
        unionid=contact.unionid,
        name=contact.name,
        type=_CONTACT_TYPE.get(contact.type, pb.EXTERNAL_CONTACT_TYPE_UNSPECIFIED),
        follow_userids=contact.follow_userids,
    )


def transfer_result_to_pb(result: CustomerTransferResult) -> pb.CustomerTransferResult:
    return pb.CustomerTransferResult(
        external_userid=result.external_userid,
        status=_TRANSFER_STATUS.get(result.status, pb.TRANSFER_STATUS_UNSPECIFIED),
        takeover_time=ts(result.takeover_time),
    )


def quota_to_pb(view: ApiQuotaView) -> pb.ApiQuota:
    return pb.ApiQuota(
        api=view.api,
        used_today=view.used_today,
        daily_limit=view.daily_limit,
        paused_until=ts(view.paused_until),
        paused_errcode=view.paused_errcode,
        rate_per_second=view.per_second,
    )


_STATUS = {
    QUEUED: pb.SEND_STATUS_QUEUED,
    # In flight: still queued as far as a caller is concerned.
    SENDING: pb.SEND_STATUS_QUEUED,
    SENT: pb.SEND_STATUS_SENT,
    FAILED: pb.SEND_STATUS_FAILED,
    PAUSED: pb.SEND_STATUS_PAUSED,
}


def new_send_from_pb(tenant_id: str, request: pb.SendMessageRequest) -> NewSend:
    which = request.WhichOneof("message")
    common = {
        "tenant_id": tenant_id,
        "idempotency_key": request.idempotency_key,
        "customer_id": request.customer_id,
    }
    if which == "official_account_text":
        m = request.official_account_text
        return NewSend(
            **common,
            kind="official_account_text",
            account_id=m.app_id,
            payload={"openid": m.openid, "text": m.text},
        )
    if which == "official_account_template":
        t = request.official_account_template
        return NewSend(
            **common,
            kind="official_account_template",
            account_id=t.app_id,
            payload={
                "openid": t.openid,
                "template_id": t.template_id,
                "url": t.url,
                "data": dict(t.data),
            },
        )
    if which == "wecom_welcome":
        w = request.wecom_welcome
        return NewSend(
            **common,
            kind="wecom_welcome",
            account_id=w.corp_id,
            payload={"welcome_code": w.welcome_code, "text": w.text},
        )
    if which == "wecom_msg_template":
        g = request.wecom_msg_template
        return NewSend(
            **common,
            kind="wecom_msg_template",
            account_id=g.corp_id,
            payload={
                "sender_userid": g.sender_userid,
                "external_userids": list(g.external_userids),
                "text": g.text,
            },
        )
    if which == "wecom_member_text":
        member = request.wecom_member_text
        return NewSend(
            **common,
            kind="wecom_member_text",
            account_id=member.corp_id,
            payload={"userid": member.userid, "text": member.text},
        )
    raise InvalidArgument("a message is required", field="message")


def send_to_pb(row: SendRow) -> pb.Send:
    return pb.Send(
        send_id=row.id,
        idempotency_key=row.idempotency_key or "",  # "" once expired
        status=_STATUS[row.status],
        errcode=row.errcode,
        errmsg=row.errmsg,
        attempts=row.attempts,
        created_at=ts(row.created_at),
        sent_at=ts(row.sent_at),
        tenant_id=row.tenant_id,
        customer_id=row.customer_id,
        kind=KIND_PB[row.kind],
        account_id=row.account_id,
        wechat_msgid=row.wechat_msgid,
        next_attempt_at=ts(row.next_attempt_at),
    )
