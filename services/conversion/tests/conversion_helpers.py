"""Builders for conversion tests: reps, lead.captured events, signed WeCom callbacks."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client

from closedloop.common.v1 import common_pb2 as c
from closedloop.conversion.v1 import conversion_pb2 as pb
from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.events.v1 import retention_events_pb2 as ret
from closedloop.events.v1.envelope_pb2 import Envelope
from loopkit.events import new_envelope, subject_for
from loopkit.wechat.crypto import MessageCrypto, signature
from loopkit.wechat.xml import build_message
from loopkit_dev.testing import read_events

CORP = "ww-conv-corp"
TOKEN = "conv-callback-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CRYPTO = MessageCrypto(TOKEN, AES_KEY, CORP)


# The test corp's application (messages to reps), when a test gives it one.
AGENT_ID = "1000007"
AGENT_SECRET = "conv-agent-secret-2b8e"


def accounts(tenant: str, *official_accounts: dict[str, Any], app: bool = False) -> str:
    """The account registry (CLOSEDLOOP_ACCOUNTS) with the test corp serving `tenant`: its
    contact secret for the gateway, its callback token and key for conversion; with `app`, its
    application (agent_id + agent_secret) too."""
    corp: dict[str, Any] = {
        "tenant_id": tenant,
        "corp_id": CORP,
        "contact_secret": "conv-corp-secret-9a7c",
        "token": TOKEN,
        "aes_key": AES_KEY,
    }
    if app:
        corp |= {"agent_id": AGENT_ID, "agent_secret": AGENT_SECRET}
    return json.dumps({"official_accounts": list(official_accounts), "wecom_corps": [corp]})


async def make_rep(
    stub: Any, tenant: str, user: str, *, team: str = "sales", capacity: int = 10, **kw: Any
) -> pb.Rep:
    answer = await stub.CreateRep(
        pb.CreateRepRequest(
            tenant_id=tenant, wecom_user_id=user, name=user, team=team, capacity=capacity, **kw
        )
    )
    return answer.rep


def lead_envelope(
    tenant: str,
    customer_id: str = "",
    *,
    lead_id: str = "",
    campaign_id: str = "camp-1",
    owner_team: str = "sales",
    region: str = "",
    tags: Sequence[str] = (),
    channel_id: str = "ch-1",
    daily_cap_per_rep: int = 0,
) -> Envelope:
    event = acq.LeadCaptured(
        lead_id=lead_id or f"lead-{uuid.uuid4().hex[:12]}",
        campaign_id=campaign_id,
        channel_id=channel_id,
        daily_cap_per_rep=daily_cap_per_rep,
        owner_team=owner_team,
        region=region,
        tags=list(tags),
        consent_granted=True,
    )
    return new_envelope(
        producer="acquisition",
        event_type="lead.captured",
        tenant_id=tenant,
        customer_id=customer_id or f"cust-{uuid.uuid4().hex[:8]}",
        payload=event,
    )


async def publish(nc: Client, env: Envelope, *, dedupe: bool = True) -> None:
    """Publish as acquisition's relay would (with `dedupe=False`, a redelivered copy)."""
    headers = {"Nats-Msg-Id": env.id} if dedupe else None
    await nc.jetstream().publish(
        subject_for(env.producer, env.type), env.SerializeToString(), headers=headers
    )


async def events(nc: Client, tenant: str, event_type: str) -> list[Envelope]:
    found = await read_events(nc, "CONVERSION", tenant_id=tenant)
    return [e for e in found if e.type == event_type]


def contact_change(
    change_type: str,
    user_id: str,
    external_userid: str,
    *,
    state: str = "",
    welcome_code: str = "",
    fail_reason: str = "",
    create_time: int | None = None,
) -> dict[str, str | int]:
    fields: dict[str, str | int] = {
        "ToUserName": CORP,
        "FromUserName": "sys",
        "CreateTime": create_time if create_time is not None else int(time.time()),
        "MsgType": "event",
        "Event": "change_external_contact",
        "ChangeType": change_type,
        "UserID": user_id,
        "ExternalUserID": external_userid,
    }
    if state:
        fields["State"] = state
    if welcome_code:
        fields["WelcomeCode"] = welcome_code
    if fail_reason:
        fields["FailReason"] = fail_reason
    return fields


def signed_callback(
    fields: dict[str, str | int], *, timestamp: int | None = None, token: str = TOKEN
) -> tuple[dict[str, str], bytes]:
    """Query parameters and body of a safe-mode WeCom callback, signed like WeCom signs it."""
    encrypted = CRYPTO.encrypt(build_message(fields).encode())
    ts = str(timestamp if timestamp is not None else int(time.time()))
    nonce = uuid.uuid4().hex[:10]
    params = {
        "msg_signature": signature(token, ts, nonce, encrypted),
        "timestamp": ts,
        "nonce": nonce,
    }
    body = build_message({"ToUserName": CORP, "Encrypt": encrypted, "AgentID": ""}).encode()
    return params, body


async def post_callback(http_url: str, fields: dict[str, str | int], **kw: Any) -> httpx.Response:
    params, body = signed_callback(fields, **kw)
    async with httpx.AsyncClient(base_url=http_url) as client:
        return await client.post(f"/v1/wecom/{CORP}/callback", params=params, content=body)


def external(value: str) -> c.Identity:
    return c.Identity(kind=c.IDENTITY_KIND_WECOM_EXTERNAL_USERID, scope=CORP, value=value)


def offered(tenant: str, customer_id: str, rep_id: str, win_back_id: str = "") -> Envelope:
    valid_until = Timestamp()
    valid_until.FromDatetime(datetime.now(UTC) + timedelta(days=14))
    return new_envelope(
        producer="retention",
        event_type="win_back.offered",
        tenant_id=tenant,
        customer_id=customer_id,
        payload=ret.WinBackOffered(
            win_back_id=win_back_id or uuid.uuid4().hex[:26],
            coupon_id="coupon-1",
            value_minor=2000,
            valid_until=valid_until,
            owner_rep_id=rep_id,
            attempt=1,
        ),
    )
