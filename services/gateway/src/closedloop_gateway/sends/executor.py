"""One attempt of a send: the WeChat call of its kind, and how its answer is classified.

Transient answers (busy -1, no answer) are retried with back-off; an over-limit answer pauses the
send until the API resumes; anything else is final.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from closedloop_gateway.models import SendRow
from closedloop_gateway.quotas.service import QuotaPaused
from closedloop_gateway.sends.model import (
    API_OF,
    ERASED,
    FAILED,
    FORGOTTEN,
    PAUSED,
    QUEUED,
    SENT,
    Outcome,
)
from closedloop_gateway.sends.service import IN_DOUBT_MESSAGE, RetryPolicy
from closedloop_gateway.wechat.caller import WeChatCaller
from closedloop_gateway.wechat.errors import TOKEN_ERRCODES, WeChatError, WeChatUnreachable
from loopkit.accounts import AccountRegistry, Credential, WecomCorp
from loopkit.timestamps import now, utc


class InDoubt(Exception):
    """WeChat could not be asked whether an in-doubt send went out; try again later."""


# WeChat's own reasons a message can never go out as asked (shown in the send's errmsg).
_FINAL_REASONS = {
    45015: "outside the 48-hour customer-service window",
    45047: "too many customer-service messages without a reply from the follower",
    43004: "the follower has unsubscribed",
    40003: "invalid openid",
    40037: "invalid template_id",
    41051: "welcome_code invalid or expired (WeCom gives 20 seconds)",
    81013: "the member is not in the application's visible range",
    48002: "the token is not allowed to call this API (check which secret the account uses)",
}


def _call_of(row: SendRow, agent_id: str = "") -> Callable[[Any], Any]:
    p = row.payload
    if row.kind == "official_account_text":
        return lambda c: c.message.send_text(p["openid"], p["text"])
    if row.kind == "official_account_template":
        data = {k: {"value": v} for k, v in dict(p.get("data", {})).items()}
        return lambda c: c.message.send_template(
            p["openid"], p["template_id"], data, url=p.get("url") or None
        )
    if row.kind == "wecom_member_text":
        # WeCom takes the agentid as a number (the registry checks it is one).
        return lambda c: c.message.send_text(int(agent_id), p["userid"], p["text"])
    if row.kind == "wecom_welcome":
        body = {"welcome_code": p["welcome_code"], "text": {"content": p["text"]}}
        return lambda c: c.external_contact.send_welcome_msg(body)
    body = {
        "chat_type": "single",
        "external_userid": list(p["external_userids"]),
        "sender": p["sender_userid"],
        "text": {"content": p["text"]},
    }
    return lambda c: c.external_contact.add_msg_template(body)


class SendExecutor:
    def __init__(self, registry: AccountRegistry, caller: WeChatCaller, retry: RetryPolicy) -> None:
        self._registry = registry
        self._caller = caller
        self._retry = retry

    async def attempt(self, row: SendRow) -> Outcome:
        account: Credential | None = self._registry.by_id(row.account_id)
        agent_id = ""
        if isinstance(account, WecomCorp) and row.kind == "wecom_member_text":
            account = account.app()  # message/send takes the application's token
            agent_id = account.agent_id if account is not None else ""
        if account is None:
            return Outcome(
                FAILED, 0, f"account {row.account_id} is no longer configured", called=False
            )
        try:
            answer = await self._caller.call(account, API_OF[row.kind], _call_of(row, agent_id))
        except QuotaPaused as paused:
            return Outcome(
                PAUSED, paused.errcode, paused.errmsg, next_attempt_at=paused.until, called=False
            )
        except WeChatUnreachable as exc:
            return self._retry_later(row, 0, exc.reason)
        except WeChatError as exc:
            if exc.transient or exc.errcode in TOKEN_ERRCODES:
                return self._retry_later(row, exc.errcode, exc.errmsg)
            reason = _FINAL_REASONS.get(exc.errcode)
            return Outcome(FAILED, exc.errcode, f"{reason}: {exc.errmsg}" if reason else exc.errmsg)
        if isinstance(answer, dict) and answer.get("invaliduser"):
            # WeCom accepts the call but names the members it could not reach.
            return Outcome(FAILED, 81013, f"{_FINAL_REASONS[81013]}: {answer['invaliduser']}")
        msgid = answer.get("msgid", "") if isinstance(answer, dict) else ""
        return Outcome(SENT, wechat_msgid=str(msgid or ""))

    async def reconcile(self, row: SendRow) -> Outcome:
        """The outcome of a send its replica left in doubt (it stopped mid-call).

        A WeCom broadcast can be looked up: WeCom lists a sender's broadcasts by creation time,
        so one with this text created since the call means it went out (SENT, with its msgid),
        and none means WeCom never made it (tried again). WeChat offers no such lookup for
        customer-service, template or welcome messages: those fail as "outcome unknown".
        """
        account = self._registry.by_id(row.account_id)
        if row.fingerprint == ERASED:  # the customer was forgotten meanwhile: nothing to match
            return Outcome(FAILED, 0, FORGOTTEN, called=False)
        if row.kind != "wecom_msg_template" or account is None or row.called_at is None:
            return Outcome(FAILED, 0, IN_DOUBT_MESSAGE, called=False)
        p = row.payload
        since = int(utc(row.called_at).timestamp()) - 5
        body = {
            "chat_type": "single",
            "start_time": since,
            "end_time": int(now().timestamp()) + 5,
            "creator": p["sender_userid"],
            "limit": 100,
        }
        api = "externalcontact/get_groupmsg_list_v2"
        try:
            answer = await self._caller.call(account, api, lambda c: c.post(api, data=body))
        except (WeChatError, WeChatUnreachable, QuotaPaused) as exc:
            # Cannot tell now: ask again once the lease has run out once more.
            raise InDoubt(str(exc)) from None
        for sent in answer.get("group_msg_list", []):
            if sent.get("text", {}).get("content") == p["text"]:
                return Outcome(SENT, wechat_msgid=str(sent.get("msgid", "")), called=False)
        return Outcome(
            QUEUED,
            0,
            "not created by WeCom before the gateway stopped; retrying",
            next_attempt_at=now(),
            called=False,
        )

    def _retry_later(self, row: SendRow, errcode: int, errmsg: str) -> Outcome:
        at: datetime = now()
        # row.attempts is the count before this attempt.
        return Outcome(
            QUEUED, errcode, errmsg, next_attempt_at=self._retry.next_attempt(row.attempts + 1, at)
        )
