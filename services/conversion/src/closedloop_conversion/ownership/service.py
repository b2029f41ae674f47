"""Use cases of the friend relation: WeCom contact changes, contact ways, welcome messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.common.v1 import common_pb2
from closedloop.events.v1 import conversion_events_pb2 as ev
from closedloop_conversion.common import new_id, now, optional, required, utc
from closedloop_conversion.models import CallbackRow, ContactWayRow, OwnershipRow
from closedloop_conversion.ownership.changes import WELCOME_WINDOW_S, ChangeType, ContactChange
from closedloop_conversion.ownership.repository import OwnershipRepository
from closedloop_conversion.ownership.transfers import TransferService
from closedloop_conversion.ownership.views import ChangeOutcome, OwnershipView, WelcomeJob
from closedloop_conversion.sales.repository import SalesRepository
from loopkit.events import Outbox
from loopkit.views import view_of

END_REASONS = {
    ChangeType.REP_DELETED_CUSTOMER: (
        "rep_deleted_customer",
        ev.OWNERSHIP_END_REASON_REP_DELETED_CUSTOMER,
    ),
    ChangeType.CUSTOMER_DELETED_REP: (
        "customer_deleted_rep",
        ev.OWNERSHIP_END_REASON_CUSTOMER_DELETED_REP,
    ),
}


class OwnershipService:
    def __init__(self, outbox: Outbox, transfers: TransferService) -> None:
        self._outbox = outbox
        self._reps = SalesRepository()
        self._repo = OwnershipRepository()
        self._transfers = transfers

    async def set_contact_way(
        self, session: AsyncSession, tenant: str, state: str, channel_id: str, welcome_text: str
    ) -> None:
        state = required(state, "state", max_len=64)
        row = await self._repo.contact_way(session, tenant, state)
        if row is None:
            row = ContactWayRow(tenant_id=tenant, state=state)
            self._repo.add(session, row)
        row.channel_id = optional(channel_id, "channel_id", max_len=64)
        row.welcome_text = optional(welcome_text, "welcome_text", max_len=4000)
        row.updated_at = now()
        await session.flush()

    async def list(
        self,
        session: AsyncSession,
        tenant: str,
        *,
        rep_id: str = "",
        customer_id: str = "",
        include_ended: bool = False,
    ) -> Sequence[OwnershipView]:
        rows = await self._repo.ownerships(
            session, tenant, rep_id=rep_id, customer_id=customer_id, include_ended=include_ended
        )
        return [view_of(OwnershipView, row) for row in rows]

    async def apply_change(
        self, session: AsyncSession, tenant: str, change: ContactChange, customer_id: str
    ) -> ChangeOutcome:
        """Apply one WeCom contact change once; `customer_id` is identity's id for the contact."""
        if await self._repo.callback_seen(session, change.key):
            return ChangeOutcome(False, "duplicate callback")
        self._repo.add(
            session,
            CallbackRow(
                key=change.key,
                tenant_id=tenant,
                change_type=str(change.change_type),
                received_at=now(),
            ),
        )
        rep = await self._reps.rep_by_wecom(session, tenant, change.user_id)
        if rep is None:
            return ChangeOutcome(False, f"unknown rep {change.user_id!r}")
        if change.change_type is ChangeType.TRANSFER_FAIL:
            done = await self._transfers.fail_from_wecom(
                session,
                tenant,
                corp_id=change.corp_id,
                external_userid=change.external_userid,
                to_rep_id=rep.id,
                fail_reason=change.fail_reason,
            )
            return ChangeOutcome(done, "transfer failed" if done else "no pending transfer")
        row = await self._repo.ownership(
            session, tenant, change.corp_id, rep.id, change.external_userid
        )
        if change.change_type is ChangeType.ADD:
            return await self._added(session, tenant, change, customer_id, rep_id=rep.id, row=row)
        if row is None:
            return ChangeOutcome(False, "no such friendship")
        if change.change_type is ChangeType.EDIT:
            return ChangeOutcome(True, "edited", view_of(OwnershipView, row))
        if row.status != "active":
            return ChangeOutcome(
                False, f"friendship already {row.status}", view_of(OwnershipView, row)
            )
        reason, reason_pb = END_REASONS[change.change_type]
        row.status = "ended"
        row.ended_at = min(change.created_at, now())
        row.end_reason = reason
        await session.flush()
        await self._outbox.emit(
            session,
            "ownership.ended",
            tenant_id=tenant,
            customer_id=row.customer_id,
            payload=ev.OwnershipEnded(rep_id=rep.id, reason=reason_pb, channel_id=row.channel_id),
        )
        return ChangeOutcome(True, reason, view_of(OwnershipView, row))

    async def _added(
        self,
        session: AsyncSession,
        tenant: str,
        change: ContactChange,
        customer_id: str,
        *,
        rep_id: str,
        row: OwnershipRow | None,
    ) -> ChangeOutcome:
        way = await self._repo.contact_way(session, tenant, change.state)
        channel_id = way.channel_id if way is not None else ""
        if row is not None and row.status == "active":
            return ChangeOutcome(False, "already friends", view_of(OwnershipView, row))
        if row is None:
            row = OwnershipRow(
                id=new_id(),
                tenant_id=tenant,
                corp_id=change.corp_id,
                rep_id=rep_id,
                external_userid=change.external_userid,
                remark="",
            )
            self._repo.add(session, row)
        row.customer_id = customer_id
        row.channel_id = channel_id
        row.state = change.state
        row.status = "active"
        row.started_at = min(change.created_at, now())
        row.ended_at = None
        row.end_reason = ""
        row.welcome_status = ""
        row.welcome_latency_ms = None
        welcome = None
        if change.welcome_code and way is not None and way.welcome_text:
            row.welcome_status = "pending"
            rep = await self._reps.rep(session, tenant, rep_id)
            welcome = WelcomeJob(
                tenant_id=tenant,
                ownership_id=row.id,
                customer_id=customer_id,
                corp_id=change.corp_id,
                external_userid=change.external_userid,
                rep_wecom_user_id=rep.wecom_user_id if rep is not None else change.user_id,
                welcome_code=change.welcome_code,
                text=way.welcome_text,
                event_at=change.created_at,
                deadline=_deadline(change.created_at),
            )
        await session.flush()
        await self._outbox.emit(
            session,
            "ownership.started",
            tenant_id=tenant,
            customer_id=customer_id,
            payload=ev.OwnershipStarted(
                rep_id=rep_id,
                channel_id=channel_id,
                state=change.state,
                external_contact=common_pb2.Identity(
                    kind=common_pb2.IDENTITY_KIND_WECOM_EXTERNAL_USERID,
                    scope=change.corp_id,
                    value=change.external_userid,
                ),
            ),
        )
        return ChangeOutcome(True, "friendship started", view_of(OwnershipView, row), welcome)

    async def record_welcome(
        self, session: AsyncSession, tenant: str, ownership_id: str, status: str, latency_ms: int
    ) -> None:
        row = await self._repo.ownership_by_id(session, tenant, ownership_id)
        if row is not None:
            row.welcome_status = status
            row.welcome_latency_ms = latency_ms


def _deadline(event_at: datetime) -> datetime:
    return utc(event_at) + timedelta(seconds=WELCOME_WINDOW_S)
