"""Protobuf <-> domain for the gateway API."""

from __future__ import annotations

from closedloop.events.v1 import gateway_events_pb2 as ev
from closedloop.gateway.v1 import gateway_pb2 as pb
from closedloop_gateway.operations.service import (
    CustomerTransferResult,
    ExternalContact,
    QrCode,
)
from closedloop_gateway.quotas.service import ApiQuotaView
from loopkit.timestamps import ts

KIND_TO_PB = {
    "official_account_text": ev.MESSAGE_KIND_OFFICIAL_ACCOUNT_TEXT,
    "official_account_template": ev.MESSAGE_KIND_OFFICIAL_ACCOUNT_TEMPLATE,
    "wecom_welcome": ev.MESSAGE_KIND_WECOM_WELCOME,
    "wecom_msg_template": ev.MESSAGE_KIND_WECOM_MSG_TEMPLATE,
}
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
