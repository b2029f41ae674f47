"""Scheduling broadcasts, the recipients due for sending and their outcome."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop.events.v1 import retention_events_pb2 as ev
from closedloop_retention import metrics
from closedloop_retention.activity.rules import RulesRepository
from closedloop_retention.broadcasts import planner
from closedloop_retention.broadcasts.repository import BroadcastRepository
from closedloop_retention.broadcasts.views import (
    Broadcast,
    BroadcastView,
    Due,
    RecipientView,
    Stats,
)
from closedloop_retention.clock import utc, utc_or_none
from closedloop_retention.consent.service import ConsentService
from closedloop_retention.models import BroadcastRow
from closedloop_retention.segments.service import SegmentService
from loopkit.errors import InvalidArgument, NotFound
from loopkit.events import Outbox
from loopkit.uow import on_commit
from loopkit.views import view_of

MAX_TEMPLATE = 2000
MAX_TEMPLATE_ID = 64
MAX_TEMPLATE_KEYWORDS = 20
MAX_WINDOW = timedelta(days=31)


class BroadcastService:
    def __init__(
        self,
        outbox: Outbox,
        rules: RulesRepository,
        segments: SegmentService,
        repository: BroadcastRepository | None = None,
        consent: ConsentService | None = None,
    ) -> None:
        self._outbox = outbox
        self._consent = consent
        self._repo = repository or BroadcastRepository()
        self._rules = rules
        self._segments = segments

    async def schedule(
        self,
        session: AsyncSession,
        tenant: str,
        *,
        segment_id: str,
        expression: str,
        template: str,
        window_start: datetime | None,
        window_end: datetime | None,
        key: str,
        now: datetime,
        wechat_template_id: str = "",
        wechat_template_data: Mapping[str, str] | None = None,
    ) -> Broadcast:
        """Plans the segment's members into the send window (caps, quiet hours, consent) once
        per idempotency key; the broadcast with its recipients' counts. A WeChat template
        message (id + keyword data), if given, goes to recipients outside the 48-hour window."""
        if not template.strip() or len(template) > MAX_TEMPLATE:
            raise InvalidArgument(f"must be 1-{MAX_TEMPLATE} characters", field="template")
        data = dict(wechat_template_data or {})
        _check_wechat_template(wechat_template_id, data)
        if len(key) > 200:
            raise InvalidArgument("must be at most 200 characters", field="idempotency_key")
        now = utc(now)
        start = utc(window_start) if window_start else now
        end = utc(window_end) if window_end else start + timedelta(days=1)
        if end <= start:
            raise InvalidArgument("must be after window_start", field="window_end")
        if end - start > MAX_WINDOW:
            raise InvalidArgument("a send window is at most 31 days", field="window_end")
        if end <= now:
            raise InvalidArgument("the send window is over", field="window_end")
        if key:
            existing = await self._repo.by_key(session, tenant, key)
            if existing is not None:
                return await self._with_stats(session, existing)
        seg_id, expr, node = await self._segments.resolve(session, tenant, segment_id, expression)
        rules = await self._rules.get(session, tenant)
        row = BroadcastRow(
            id=str(ULID()),
            tenant_id=tenant,
            segment_id=seg_id,
            expression=expr,
            template=template,
            window_start=start,
            window_end=end,
            status="scheduled",
            idempotency_key=key or str(ULID()),
            created_at=now,
            wechat_template_id=wechat_template_id,
            wechat_template_data=data,
        )
        self._repo.add(session, row)
        since = now - timedelta(days=rules.cap_window_days)
        candidates = await self._repo.candidates(session, tenant, node, now, since)
        planned = planner.plan(candidates, rules, start, end, now)
        self._repo.add_recipients(session, row, planned)
        if not any(not p.skip_reason for p in planned):
            row.status = "completed"
        await session.flush()
        return await self._with_stats(session, row)

    async def _with_stats(self, session: AsyncSession, row: BroadcastRow) -> Broadcast:
        return Broadcast(view_of(BroadcastView, row), await self.stats(session, row.id))

    async def details(
        self, session: AsyncSession, tenant: str, broadcast_id: str, *, recipients: bool
    ) -> tuple[Broadcast, list[RecipientView]]:
        """The broadcast, its counts and (if asked) every recipient's outcome."""
        if not broadcast_id:
            raise InvalidArgument("a broadcast id is required", field="broadcast_id")
        row = await self.get(session, tenant, broadcast_id)
        listed = await self.recipients(session, row.id) if recipients else []
        return await self._with_stats(session, row), listed

    async def get(self, session: AsyncSession, tenant: str, broadcast_id: str) -> BroadcastRow:
        row = await self._repo.get(session, broadcast_id)
        if row is None or row.tenant_id != tenant:
            raise NotFound("no such broadcast", field="broadcast_id")
        return row

    async def recipients(self, session: AsyncSession, broadcast_id: str) -> list[RecipientView]:
        rows = await self._repo.recipients(session, broadcast_id)
        return [view_of(RecipientView, r) for r in rows]

    async def stats(self, session: AsyncSession, broadcast_id: str) -> Stats:
        by_status: Counter[str] = Counter()
        by_reason: Counter[str] = Counter()
        for status, reason, n in await self._repo.outcome_counts(session, broadcast_id):
            by_status[status] += n
            if reason:
                by_reason[reason] += n
        deliveries = await self._repo.delivery_counts(session, broadcast_id)
        return Stats(
            recipients=sum(by_status.values()),
            scheduled=by_status["scheduled"] + by_status["sending"],
            sent=by_status["sent"],
            skipped=by_status["skipped"],
            failed=by_status["failed"],
            by_reason=dict(by_reason),
            delivered=deliveries.get("delivered", 0),
            delivery_failed=deliveries.get("failed", 0),
        )

    async def delivered(
        self,
        session: AsyncSession,
        tenant: str,
        broadcast_id: str,
        customer_id: str,
        *,
        message_id: str,
        ok: bool,
        errcode: int,
    ) -> bool:
        """The gateway's outcome of one recipient's message (idempotent: the same outcome
        again writes the same values); False when no recipient matches."""
        return await self._repo.set_delivery(
            session,
            tenant,
            broadcast_id,
            customer_id,
            message_id,
            delivery="delivered" if ok else "failed",
            errcode=errcode,
        )

    # --- sending -----------------------------------------------------------------------------

    async def due(self, session: AsyncSession, now: datetime, limit: int) -> list[Due]:
        rows = await self._repo.due(session, utc(now), limit)
        return [
            Due(
                view_of(RecipientView, r),
                b.template,
                k,
                s,
                v,
                b.wechat_template_id,
                dict(b.wechat_template_data or {}),
                utc_or_none(i),
            )
            for r, b, k, s, v, i in rows
        ]

    async def claim(
        self,
        session: AsyncSession,
        broadcast_id: str,
        customer_id: str,
        now: datetime,
        *,
        tenant: str = "",
        contact_kind: str = "",
    ) -> bool:
        """Takes a due recipient for sending (one dispatcher wins across replicas).

        Consent and unsubscribe are checked again here, at send time: a customer who withdrew
        after the broadcast was planned is skipped with the reason, never messaged.
        """
        withdrawn = await self._repo.consent_now(session, broadcast_id, customer_id)
        if not withdrawn and self._consent is not None and tenant:
            withdrawn = await self._consent.blocked(session, tenant, customer_id, contact_kind)
        if withdrawn:
            if await self._repo.set_status(
                session,
                broadcast_id,
                customer_id,
                was="scheduled",
                status="skipped",
                reason=withdrawn,
            ):
                await self._finish_if_done(session, broadcast_id)
            return False
        return await self._repo.set_status(
            session, broadcast_id, customer_id, was="scheduled", status="sending", sent_at=utc(now)
        )

    async def _finish_if_done(self, session: AsyncSession, broadcast_id: str) -> None:
        broadcast = await self._repo.get(session, broadcast_id)
        assert broadcast is not None
        broadcast.status = (
            "completed" if not await self._repo.unfinished(session, broadcast_id) else "sending"
        )
        await session.flush()

    async def skip_claimed(
        self, session: AsyncSession, broadcast_id: str, customer_id: str, reason: str
    ) -> None:
        """A claimed recipient that cannot be sent to (WeChat's 48-hour window closed and the
        broadcast has no template message: "window_closed"), recorded with the reason."""
        if await self._repo.set_status(
            session, broadcast_id, customer_id, was="sending", status="skipped", reason=reason
        ):
            await self._finish_if_done(session, broadcast_id)

    async def unclaim(self, session: AsyncSession, broadcast_id: str, customer_id: str) -> None:
        await self._repo.set_status(
            session, broadcast_id, customer_id, was="sending", status="scheduled", sent_at=None
        )

    async def requeue_stale(self, session: AsyncSession, claimed_before: datetime) -> int:
        """Recipients claimed by a dispatcher that died before marking them go back in the queue
        (the sender's idempotency key keeps the retry from sending twice)."""
        return await self._repo.requeue_claimed_before(session, utc(claimed_before))

    async def mark(
        self,
        session: AsyncSession,
        broadcast_id: str,
        customer_id: str,
        *,
        message_id: str,
        sent_at: datetime | None,
        failure: str = "",
        channel: str = "",
    ) -> None:
        marked = await self._repo.set_status(
            session,
            broadcast_id,
            customer_id,
            was="sending",
            status="failed" if failure else "sent",
            reason=failure,
            message_id=message_id,
            sent_at=utc(sent_at) if sent_at else None,
        )
        if not marked:
            return  # already marked by an earlier attempt
        broadcast = await self._repo.get(session, broadcast_id)
        assert broadcast is not None
        if not failure:
            on_commit(session, lambda: metrics.broadcast_messages_sent.add(1))
            await self._outbox.emit(
                session,
                "broadcast.sent",
                tenant_id=broadcast.tenant_id,
                customer_id=customer_id,
                payload=ev.BroadcastSent(
                    broadcast_id=broadcast_id, message_id=message_id, channel=channel
                ),
            )
        await self._finish_if_done(session, broadcast_id)


def _check_wechat_template(template_id: str, data: dict[str, str]) -> None:
    if len(template_id) > MAX_TEMPLATE_ID or template_id != template_id.strip():
        raise InvalidArgument(
            f"must be at most {MAX_TEMPLATE_ID} characters, no spaces", field="wechat_template_id"
        )
    if data and not template_id:
        raise InvalidArgument("keyword data needs a template id", field="wechat_template_data")
    if len(data) > MAX_TEMPLATE_KEYWORDS:
        raise InvalidArgument(
            f"at most {MAX_TEMPLATE_KEYWORDS} keywords", field="wechat_template_data"
        )
    for name, value in data.items():
        if not name or len(name) > 32 or len(value) > MAX_TEMPLATE:
            raise InvalidArgument(
                f"keywords are 1-32 characters, values at most {MAX_TEMPLATE}",
                field="wechat_template_data",
            )
