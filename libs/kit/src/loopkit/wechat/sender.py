"""The one interface every outbound WeChat/WeCom message goes through.

Conversion sends welcome messages, retention sends broadcasts and win-back offers: both hand an
`OutboundMessage` to a `MessageSender`. `make run` and the tests use `SandboxSender`, which records
what would have been sent (in memory and, when given a path, as JSON lines an operator can read);
`loopkit.gateway_client.GatewayClient` hands the message to the gateway service, which sends it
through WeChat's and WeCom's APIs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from ulid import ULID

from loopkit.customers import IdentityValue


@dataclass(frozen=True)
class OutboundMessage:
    tenant_id: str
    customer_id: str
    # Where it goes: an openid (customer-service/template message), an external_userid (WeCom).
    recipient: IdentityValue
    # "text", "template", "welcome", "mass", ...
    kind: str
    content: str
    # Platform details: a WelcomeCode, a template id, the sending rep's WeCom user id.
    params: Mapping[str, str] = field(default_factory=dict)
    # Caller's idempotency key: a sender never sends the same key twice.
    key: str = ""


@dataclass(frozen=True)
class SendReceipt:
    message_id: str
    sent_at: datetime
    # True when the key had been sent before and nothing went out this time.
    duplicate: bool = False
    # "sent"; or "queued" / "paused" when a durable sender (the gateway) holds the message and
    # reports its outcome later (message.sent / message.failed).
    status: str = "sent"


class SendRefused(Exception):
    """The platform refused the message (quota, blocked recipient, expired code): do not retry."""


# WeChat lets an official account send a customer-service message only within this time of the
# follower's last interaction; outside it, a template message or nothing.
SERVICE_WINDOW = timedelta(hours=48)


def outside_service_window(
    contact_kind: str, last_interaction: datetime | None, now: datetime
) -> bool:
    """True when a customer-service text to this contact would be refused (45015): an openid
    with no interaction within SERVICE_WINDOW. WeCom contacts have no such window."""
    if contact_kind != "wechat_openid":
        return False
    return last_interaction is None or now - last_interaction >= SERVICE_WINDOW


# Most messages one `send_many` call hands over (the gateway's SendMessages takes 500).
MAX_BATCH = 500


class MessageSender(Protocol):
    async def send(self, message: OutboundMessage) -> SendReceipt: ...

    async def send_many(
        self, messages: Sequence[OutboundMessage]
    ) -> list[SendReceipt | SendRefused]:
        """Up to MAX_BATCH messages of one tenant in one request: per message, in order, its
        receipt or why it was refused. A transient failure (nothing known to be stored) raises
        for the whole batch; a repeat sends nothing twice (each message's key)."""
        ...


class SandboxSender:
    """Records messages instead of sending them. Refuses what the platform would refuse in the
    cases tests need: a recipient in `blocked`, or a welcome code used twice."""

    def __init__(self, log_path: Path | None = None) -> None:
        self.sent: list[tuple[OutboundMessage, SendReceipt]] = []
        # The size of each `send_many` call, in order (what a broadcast's pages were).
        self.batches: list[int] = []
        self.blocked: set[str] = set()
        self._by_key: dict[str, SendReceipt] = {}
        self._used_welcome_codes: set[str] = set()
        self._log_path = log_path
        self._lock = asyncio.Lock()

    async def send(self, message: OutboundMessage) -> SendReceipt:
        async with self._lock:
            if message.key and message.key in self._by_key:
                first = self._by_key[message.key]
                return SendReceipt(first.message_id, first.sent_at, duplicate=True)
            if message.recipient.value in self.blocked:
                raise SendRefused(f"recipient {message.recipient.value} does not accept messages")
            code = message.params.get("welcome_code", "")
            if code:
                if code in self._used_welcome_codes:
                    raise SendRefused("welcome code already used")
                self._used_welcome_codes.add(code)
            receipt = SendReceipt(str(ULID()), datetime.now(UTC))
            self.sent.append((message, receipt))
            if message.key:
                self._by_key[message.key] = receipt
            if self._log_path is not None:
                await asyncio.to_thread(self._append, message, receipt)
            return receipt

    async def send_many(
        self, messages: Sequence[OutboundMessage]
    ) -> list[SendReceipt | SendRefused]:
        results: list[SendReceipt | SendRefused] = []
        for message in messages:
            try:
                results.append(await self.send(message))
            except SendRefused as exc:
                results.append(exc)
        self.batches.append(len(messages))
        return results

    def _append(self, message: OutboundMessage, receipt: SendReceipt) -> None:
        self._log_path.parent.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
        record = {
            "message_id": receipt.message_id,
            "sent_at": receipt.sent_at.isoformat(),
            **asdict(message),
            "params": dict(message.params),
        }
        with self._log_path.open("a", encoding="utf-8") as f:  # type: ignore[union-attr]
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
