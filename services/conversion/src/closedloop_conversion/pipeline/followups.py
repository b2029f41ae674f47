"""Follow-ups: a rep's calls, chats, meetings and Moments interactions with a customer, logged by
hand or imported in bulk from the WeCom chat archive (de-duplicated by message id)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1 import conversion_events_pb2 as ev
from closedloop_conversion import metrics
from closedloop_conversion.common import new_id, now, optional, required
from closedloop_conversion.models import FollowUpRow, RepRow
from closedloop_conversion.pipeline.repository import PipelineRepository
from closedloop_conversion.pipeline.views import FollowUpView
from closedloop_conversion.sales.repository import SalesRepository
from closedloop_conversion.sales.service import SalesService
from loopkit.errors import DomainError, InvalidArgument, NotFound
from loopkit.events import Outbox
from loopkit.uow import on_commit
from loopkit.views import view_of

MAX_BATCH = 1000
MAX_SUMMARY = 2000
# Clocks differ: a message a little ahead of ours is not "in the future".
_SKEW = timedelta(minutes=5)


class Kind(StrEnum):
    CHAT = "chat"
    CALL = "call"
    MEETING = "meeting"
    MOMENTS_LIKE = "moments_like"
    MOMENTS_COMMENT = "moments_comment"
    NOTE = "note"


KIND_PB = {
    Kind.CHAT: ev.FOLLOW_UP_KIND_CHAT,
    Kind.CALL: ev.FOLLOW_UP_KIND_CALL,
    Kind.MEETING: ev.FOLLOW_UP_KIND_MEETING,
    Kind.MOMENTS_LIKE: ev.FOLLOW_UP_KIND_MOMENTS_LIKE,
    Kind.MOMENTS_COMMENT: ev.FOLLOW_UP_KIND_MOMENTS_COMMENT,
    Kind.NOTE: ev.FOLLOW_UP_KIND_NOTE,
}


@dataclass(frozen=True)
class Rejected:
    index: int
    reason: str
    field: str = ""


@dataclass
class ImportResult:
    stored: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)


@dataclass(frozen=True)
class ChatMessage:
    message_id: str
    sender: str
    receiver: str
    at: datetime
    type: str
    text: str


def parse_chat_message(raw: Mapping[str, Any]) -> ChatMessage:
    """One archive record; raises InvalidArgument naming the bad field."""
    if not isinstance(raw, Mapping):
        raise InvalidArgument("must be an object", field="message")

    def text_of(name: str, *, max_len: int = 128, need: bool = True) -> str:
        value = raw.get(name, "")
        if not isinstance(value, str):
            raise InvalidArgument("must be a string", field=name)
        return (
            required(value, name, max_len=max_len)
            if need
            else optional(value, name, max_len=max_len)
        )

    message_id = text_of("msg_id")
    sender = text_of("sender")
    receiver = text_of("receiver")
    kind = text_of("type", max_len=32)
    body = text_of("text", max_len=MAX_SUMMARY * 4, need=False)
    if kind == "text" and not body:
        raise InvalidArgument("a text message needs text", field="text")
    when = raw.get("time")
    at: datetime
    if isinstance(when, bool) or when is None:
        raise InvalidArgument("is required (unix seconds or ISO 8601)", field="time")
    if isinstance(when, int | float):
        if not 0 < when < 10_000_000_000:
            raise InvalidArgument("unix seconds out of range", field="time")
        at = datetime.fromtimestamp(when, UTC)
    elif isinstance(when, str):
        try:
            at = datetime.fromisoformat(when)
        except ValueError:
            raise InvalidArgument("not an ISO 8601 time", field="time") from None
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    else:
        raise InvalidArgument("must be unix seconds or ISO 8601", field="time")
    if at > now().replace(microsecond=0) + _SKEW:
        raise InvalidArgument("is in the future", field="time")
    return ChatMessage(message_id, sender, receiver, at, kind, body)


class FollowUpService:
    def __init__(self, outbox: Outbox, sales: SalesService) -> None:
        self._outbox = outbox
        self._reps = SalesRepository()
        self._repo = PipelineRepository()
        self._sales = sales

    async def log(
        self,
        session: AsyncSession,
        tenant: str,
        *,
        customer_id: str,
        rep_id: str,
        kind: Kind,
        summary: str,
        at: datetime | None,
        inbound: bool = False,
        message_id: str | None = None,
    ) -> FollowUpView:
        customer = required(customer_id, "customer_id", max_len=26)
        rep = await self._reps.rep(session, tenant, rep_id)
        if rep is None:
            raise NotFound("no such rep", field="rep_id")
        row = await self._log(
            session,
            tenant,
            customer_id=customer,
            rep=rep,
            kind=kind,
            summary=summary,
            at=at or now(),
            inbound=inbound,
            message_id=message_id,
        )
        return view_of(FollowUpView, row)

    async def _log(
        self,
        session: AsyncSession,
        tenant: str,
        *,
        customer_id: str,
        rep: RepRow,
        kind: Kind,
        summary: str,
        at: datetime,
        inbound: bool,
        message_id: str | None,
    ) -> FollowUpRow:
        lead_id = None
        if not inbound:
            lead_id = await self._sales.note_follow_up(session, tenant, customer_id, rep.id, at)
        row = FollowUpRow(
            id=new_id(),
            tenant_id=tenant,
            customer_id=customer_id,
            rep_id=rep.id,
            lead_id=lead_id,
            kind=str(kind),
            summary=summary[:MAX_SUMMARY],
            inbound=inbound,
            message_id=message_id,
            at=at,
            recorded_at=now(),
        )
        self._repo.add(session, row)
        await session.flush()
        await self._outbox.emit(
            session,
            "followup.logged",
            tenant_id=tenant,
            customer_id=customer_id,
            payload=ev.FollowUpLogged(
                follow_up_id=row.id,
                rep_id=rep.id,
                kind=KIND_PB[kind],
                inbound=inbound,
                lead_id=lead_id or "",
            ),
        )
        on_commit(session, partial(metrics.followups_logged.add, 1, {"kind": str(kind)}))
        return row

    async def import_chat(
        self, session: AsyncSession, tenant: str, records: Sequence[Any]
    ) -> ImportResult:
        """Store the good records of a chat archive batch; report the bad ones by index."""
        if len(records) > MAX_BATCH:
            raise InvalidArgument(f"at most {MAX_BATCH} messages per batch", field="messages")
        result = ImportResult()
        parsed: list[tuple[int, ChatMessage]] = []
        for index, raw in enumerate(records):
            try:
                parsed.append((index, parse_chat_message(raw)))
            except DomainError as exc:
                result.rejected.append(Rejected(index, exc.reason, exc.field or ""))
        known = await self._repo.known_message_ids(
            session, tenant, [m.message_id for _, m in parsed]
        )
        reps: dict[str, RepRow | None] = {}

        async def rep_of(user_id: str) -> RepRow | None:
            if user_id not in reps:
                reps[user_id] = await self._reps.rep_by_wecom(session, tenant, user_id)
            return reps[user_id]

        for index, message in parsed:
            if message.message_id in known:
                result.duplicates += 1
                continue
            rep = await rep_of(message.sender)
            inbound = False
            contact = message.receiver
            if rep is None:
                rep = await rep_of(message.receiver)
                inbound = True
                contact = message.sender
            if rep is None:
                result.rejected.append(
                    Rejected(index, "neither sender nor receiver is a known rep", "sender")
                )
                continue
            customer_id = await self._repo.customer_of_contact(session, tenant, rep.id, contact)
            if customer_id is None:
                field_name = "sender" if inbound else "receiver"
                result.rejected.append(Rejected(index, "unknown external contact", field_name))
                continue
            summary = message.text if message.type == "text" else f"[{message.type}]"
            await self._log(
                session,
                tenant,
                customer_id=customer_id,
                rep=rep,
                kind=Kind.CHAT,
                summary=summary,
                at=message.at,
                inbound=inbound,
                message_id=message.message_id,
            )
            known.add(message.message_id)
            result.stored += 1
        result.rejected.sort(key=lambda r: r.index)
        return result
