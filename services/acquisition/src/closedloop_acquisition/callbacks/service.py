"""Callback messages: store once (WeChat retries), answer, then process one by one.

`accept` runs on the request in one short transaction; `process` runs in the worker, after the
sender's openid was resolved through identity outside any transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop.events.v1 import acquisition_events_pb2 as ev
from closedloop_acquisition.callbacks import repository as repo
from closedloop_acquisition.catalog.service import CatalogService, closed
from closedloop_acquisition.catalog.specs import text
from closedloop_acquisition.fission.service import FissionService
from closedloop_acquisition.models import WechatInboxRow
from closedloop_acquisition.touches.service import TouchService
from loopkit.customers import IdentityValue, ResolvedCustomer
from loopkit.errors import InvalidArgument
from loopkit.events import Outbox

SCENE_PREFIX = "qrscene_"
SUMMARY_CHARS = 200


@dataclass(frozen=True)
class InboxMessage:
    """A stored message waiting for the worker."""

    id: str
    tenant_id: str
    app_id: str
    kind: str  # the event, else the message type
    attempts: int
    trace_context: dict[str, str]
    identities: tuple[IdentityValue, ...]


@dataclass(frozen=True)
class Accepted:
    inbox_id: str
    duplicate: bool
    # Text for a passive reply (the channel's welcome message), empty for plain `success`.
    reply: str


def dedup_key(message: dict[str, str]) -> str:
    """WeChat's own rule: MsgId for messages, FromUserName + CreateTime for events."""
    if message.get("MsgId"):
        return f"msg:{message['MsgId']}"
    return f"event:{message.get('FromUserName', '')}:{message.get('CreateTime', '')}"


def event_of(message: dict[str, str]) -> str:
    return message.get("Event", "") if message.get("MsgType") == "event" else ""


def scene_of(message: dict[str, str]) -> str:
    """The QR scene of a subscribe (qrscene_<scene>) or SCAN (<scene>) event."""
    event, key = event_of(message), message.get("EventKey", "")
    if event == "subscribe":
        return key[len(SCENE_PREFIX) :] if key.startswith(SCENE_PREFIX) else ""
    if event == "SCAN":
        return key
    return ""


def check(message: dict[str, str]) -> None:
    """The fields every message needs, in the shapes WeChat sends them."""
    text(message.get("FromUserName", ""), "FromUserName", required=True, max_length=128)
    text(message.get("ToUserName", ""), "ToUserName", required=True, max_length=128)
    text(message.get("MsgType", ""), "MsgType", required=True, max_length=32)
    text(message.get("Event", ""), "Event", max_length=64)
    text(message.get("EventKey", ""), "EventKey", max_length=1024)
    created = message.get("CreateTime", "")
    if not (created.isdigit() and len(created) <= 12):
        raise InvalidArgument("CreateTime must be a Unix time", field="CreateTime")
    msg_id = message.get("MsgId", "")
    if msg_id and not (msg_id.isdigit() and len(msg_id) <= 64):
        raise InvalidArgument("MsgId must be a number", field="MsgId")


class CallbackService:
    def __init__(
        self,
        outbox: Outbox,
        catalog: CatalogService,
        touches: TouchService,
        fission: FissionService,
    ) -> None:
        self._outbox = outbox
        self._catalog = catalog
        self._touches = touches
        self._fission = fission

    async def accept(
        self,
        session: AsyncSession,
        tenant_id: str,
        app_id: str,
        message: dict[str, str],
        now: datetime,
        *,
        trace_context: Mapping[str, str] | None = None,
    ) -> Accepted:
        """Stores the message unless it was stored before; says what to answer.

        `trace_context` (the request's W3C headers) is kept so processing continues that trace.
        """
        check(message)
        key = dedup_key(message)
        reply = ""
        scene = scene_of(message)
        if scene:
            channel = await self._catalog.channel_by_scene(session, tenant_id, scene)
            if channel is not None:
                shut = closed(channel, now)
                reply = channel.expired_reply if shut else channel.welcome_message
        existing = await repo.stored(session, app_id, key)
        if existing is not None:
            return Accepted(existing, duplicate=True, reply=reply)
        row = WechatInboxRow(
            id=str(ULID()),
            tenant_id=tenant_id,
            app_id=app_id,
            dedup_key=key,
            from_user=message["FromUserName"],
            message=message,
            received_at=now,
            attempts=0,
            processed_at=None,
            outcome="",
            trace_context=dict(trace_context or {}),
        )
        await repo.add(session, row)
        return Accepted(row.id, duplicate=False, reply=reply)

    async def pending(self, session: AsyncSession, limit: int) -> list[InboxMessage]:
        return [
            InboxMessage(
                id=row.id,
                tenant_id=row.tenant_id,
                app_id=row.app_id,
                kind=row.message.get("Event") or row.message.get("MsgType", ""),
                attempts=row.attempts,
                trace_context=dict(row.trace_context or {}),
                identities=tuple(identities(row)),
            )
            for row in await repo.pending(session, limit)
        ]

    async def failed(
        self,
        session: AsyncSession,
        inbox_id: str,
        reason: str,
        now: datetime,
        *,
        final: bool,
        counts: bool,
    ) -> None:
        """Records why a message could not be processed; `final` gives it up."""
        values: dict[str, object] = {"outcome": reason[:1000]}
        if counts:
            values["attempts"] = repo.one_more_attempt()
        if final:
            values["processed_at"] = now
        await repo.mark(session, inbox_id, values)

    async def process(
        self,
        session: AsyncSession,
        inbox_id: str,
        customer: ResolvedCustomer | None,
        now: datetime,
    ) -> None:
        """Turns one stored message into touches or an interaction, exactly once."""
        if not await repo.claim(session, inbox_id, now):
            return  # another worker (replica) processed it
        row = await repo.get(session, inbox_id)
        assert row is not None
        message = row.message
        if not message:
            row.outcome = "erased"
            return
        tenant_id, customer_id = row.tenant_id, customer.customer_id if customer else ""
        sender = identities(row)
        at = _created_at(message, now)
        event = event_of(message)
        if event in ("subscribe", "SCAN"):
            scene = scene_of(message)
            channel = None
            if scene:
                channel = await self._catalog.channel_by_scene(session, tenant_id, scene)
            participant = None
            if channel is not None:
                participant = await self._fission.participant_of(session, tenant_id, channel.id)
            # A fission poster's scans and subscribes are credited to its participant.
            referrer = participant.customer_id if participant is not None else ""
            if channel is not None:
                await self._touches.add_touch(
                    session,
                    tenant_id,
                    channel,
                    "scan",
                    identities=sender,
                    customer_id=customer_id,
                    referrer_customer_id=referrer,
                    at=at,
                )
            if event == "subscribe":
                touch = await self._touches.add_touch(
                    session,
                    tenant_id,
                    channel,
                    "subscribe",
                    identities=sender,
                    customer_id=customer_id,
                    referrer_customer_id=referrer,
                    at=at,
                )
                new_subscriber = customer is not None and customer.created and not touch.expired
                if participant is not None and new_subscriber:
                    await self._fission.invited(session, participant, customer_id, now)
            row.outcome = "touch" if channel or not scene else f"touch; unknown scene {scene!r}"
        elif event == "unsubscribe":
            await self._touches.add_touch(
                session,
                tenant_id,
                None,
                "unsubscribe",
                identities=sender,
                customer_id=customer_id,
                at=at,
            )
            row.outcome = "touch"
        else:
            await self._interaction(session, row, customer_id)
            row.outcome = "interaction"

    async def _interaction(
        self, session: AsyncSession, row: WechatInboxRow, customer_id: str
    ) -> None:
        message = row.message
        event = event_of(message)
        if event:
            kind = event.lower()
            summary = message.get("EventKey", "")
        else:
            kind = message.get("MsgType", "")
            summary = message.get("Content", "") if kind == "text" else message.get("MediaId", "")
        await self._outbox.emit(
            session,
            "interaction.recorded",
            tenant_id=row.tenant_id,
            customer_id=customer_id,
            payload=ev.InteractionRecorded(
                interaction_id=row.id,
                kind=kind[:32],
                app_id=row.app_id,
                summary=summary[:SUMMARY_CHARS],
            ),
        )


def identities(row: WechatInboxRow) -> list[IdentityValue]:
    if not row.from_user:
        return []  # erased (customer forgotten) before it was processed
    # The message was signed with the account's token: WeChat itself names this openid.
    return [
        IdentityValue(kind="wechat_openid", value=row.from_user, scope=row.app_id, verified=True)
    ]


def _created_at(message: dict[str, str], now: datetime) -> datetime:
    try:
        return datetime.fromtimestamp(int(message.get("CreateTime", "")), UTC)
    except (ValueError, OverflowError, OSError):
        return now
