"""The welcome message of a friend-add: WeCom's code is single-use and lives 20 seconds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from closedloop_conversion.common import now
from closedloop_conversion.ownership.views import WelcomeJob
from loopkit.customers import IdentityValue
from loopkit.wechat.sender import MessageSender, OutboundMessage, SendRefused


@dataclass(frozen=True)
class WelcomeResult:
    # sent | queued (the gateway holds it past our wait) | expired | refused | failed
    status: str
    latency_ms: int
    detail: str = ""


async def send_welcome(
    sender: MessageSender, job: WelcomeJob, received_at: datetime
) -> WelcomeResult:
    """Send once (the sender de-duplicates by key), unless the window has already closed."""
    start = now()
    if start >= job.deadline:
        return WelcomeResult("expired", _ms(received_at, start), "welcome window closed")
    message = OutboundMessage(
        tenant_id=job.tenant_id,
        customer_id=job.customer_id,
        recipient=IdentityValue("wecom_external_userid", job.external_userid, scope=job.corp_id),
        kind="welcome",
        content=job.text,
        params={"welcome_code": job.welcome_code, "sender": job.rep_wecom_user_id},
        key=f"welcome:{job.ownership_id}:{job.welcome_code}",
    )
    try:
        receipt = await sender.send(message)
    except SendRefused as exc:
        return WelcomeResult("refused", _ms(received_at, now()), str(exc))
    except Exception as exc:  # the platform is unreachable: too late to retry within 20 s
        return WelcomeResult("failed", _ms(received_at, now()), f"{type(exc).__name__}: {exc}")
    if receipt.status != "sent":
        return WelcomeResult(
            "queued", _ms(received_at, now()), f"the gateway has it {receipt.status}"
        )
    return WelcomeResult("sent", _ms(received_at, receipt.sent_at))


def _ms(start: datetime, end: datetime) -> int:
    return max(0, int((end - start).total_seconds() * 1000))
