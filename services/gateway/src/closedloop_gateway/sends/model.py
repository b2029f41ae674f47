"""What a send is: its kind, the account it goes through, and what to send."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from closedloop.events.v1 import gateway_events_pb2 as ev

Kind = Literal[
    "official_account_text",
    "official_account_template",
    "wecom_welcome",
    "wecom_msg_template",
    "wecom_member_text",
]
# The WeChat API each kind is sent with (its quota and pacing are per API).
API_OF: dict[str, str] = {
    "official_account_text": "message/custom/send",
    "official_account_template": "message/template/send",
    "wecom_welcome": "externalcontact/send_welcome_msg",
    "wecom_msg_template": "externalcontact/add_msg_template",
    # From the corp's application with its own token (WecomApp), paced under its own id.
    "wecom_member_text": "message/send",
}
# Each kind as the events (message.sent / message.failed) and the gateway API name it: the one map.
KIND_PB: dict[str, ev.MessageKind] = {
    "official_account_text": ev.MESSAGE_KIND_OFFICIAL_ACCOUNT_TEXT,
    "official_account_template": ev.MESSAGE_KIND_OFFICIAL_ACCOUNT_TEMPLATE,
    "wecom_welcome": ev.MESSAGE_KIND_WECOM_WELCOME,
    "wecom_msg_template": ev.MESSAGE_KIND_WECOM_MSG_TEMPLATE,
    "wecom_member_text": ev.MESSAGE_KIND_WECOM_MEMBER_TEXT,
}
QUEUED, SENDING, SENT, FAILED, PAUSED = "queued", "sending", "sent", "failed", "paused"
# A forgotten customer's send: its message erased (payload emptied, fingerprint ERASED) and, if
# it had not gone out, failed with FORGOTTEN; never tried again (closedloop_gateway.customers).
FORGOTTEN, ERASED = "customer forgotten", "erased"


@dataclass(frozen=True)
class NewSend:
    tenant_id: str
    idempotency_key: str
    customer_id: str
    kind: Kind
    # app_id or corp_id as the caller named it ("" = the tenant's default).
    account_id: str
    # The message: openid/text, template_id/url/data, welcome_code/text, sender/recipients/text,
    # userid/text.
    payload: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self, account_id: str) -> str:
        canonical = json.dumps([self.kind, account_id, self.payload], sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended."""

    status: str
    errcode: int = 0
    errmsg: str = ""
    wechat_msgid: str = ""
    next_attempt_at: datetime | None = None
    # False when nothing was asked of WeChat (a paused API): not counted as an attempt.
    called: bool = True
