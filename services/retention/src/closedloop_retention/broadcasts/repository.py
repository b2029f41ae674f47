"""Every query of broadcasts and their recipients (the tables this concept owns)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.broadcasts import planner
from closedloop_retention.models import ActivityRow, BroadcastRow, RecipientRow
from closedloop_retention.segments import compiler, language
from loopkit.customer_rows import repoint_customer

SENT_OR_PENDING = ("sent", "scheduled", "sending")


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


class BroadcastRepository:
    # --- broadcasts --------------------------------------------------------------------------

    async def by_key(self, session: AsyncSession, tenant: str, key: str) -> BroadcastRow | None:
        return await session.scalar(
            select(BroadcastRow).where(
                BroadcastRow.tenant_id == tenant, BroadcastRow.idempotency_key == key
            )
        )

    async def get(self, session: AsyncSession, broadcast_id: str) -> BroadcastRow | None:
        return await session.get(BroadcastRow, broadcast_id)

    def add(self, session: AsyncSession, row: BroadcastRow) -> None:
        session.add(row)

    # --- planning ----------------------------------------------------------------------------

    async def candidates(
        self,
        session: AsyncSession,
        tenant: str,
        node: language.Node,
        now: datetime,
        messaged_since: datetime,
    ) -> list[planner.Candidate]:
        """The segment's members with what planning needs and their recent messages, in one
        query. It reads the activity table (activity owns it): members are activity rows."""
        recent = (
            select(RecipientRow.customer_id, func.count().label("n"))
            .where(
                RecipientRow.tenant_id == tenant,
                RecipientRow.status.in_(SENT_OR_PENDING),
                RecipientRow.send_at > messaged_since,
            )
            .group_by(RecipientRow.customer_id)
            .subquery()
        )
        members = compiler.members(tenant, node, now).subquery()
        query = (
            select(
                ActivityRow.customer_id,
                ActivityRow.unsubscribed,
                ActivityRow.consent,
                ActivityRow.contact_value,
                ActivityRow.active_hours,
                func.coalesce(recent.c.n, 0),
            )
            .join(members, members.c.customer_id == ActivityRow.customer_id)
            .outerjoin(recent, recent.c.customer_id == ActivityRow.customer_id)
            .where(ActivityRow.tenant_id == tenant)
        )
        return [
            planner.Candidate(
                customer_id=cid,
                unsubscribed=unsub,
                consent=consent,
                has_contact=bool(contact),
                recent_messages=int(n),
                preferred_hour=planner.preferred_hour(hours),
            )
            for cid, unsub, consent, contact, hours, n in (await session.execute(query)).all()
        ]

    def add_recipients(
        self, session: AsyncSession, broadcast: BroadcastRow, planned: Sequence[planner.Planned]
    ) -> None:
        for p in planned:
            session.add(
                RecipientRow(
                    broadcast_id=broadcast.id,
                    customer_id=p.customer_id,
                    tenant_id=broadcast.tenant_id,
                    status="skipped" if p.skip_reason else "scheduled",
                    reason=p.skip_reason,
                    send_at=p.send_at,
                    sent_at=None,
                    message_id="",
                )
            )

    # --- recipients --------------------------------------------------------------------------

    async def recipients(self, session: AsyncSession, broadcast_id: str) -> list[RecipientRow]:
        result = await session.scalars(
            select(RecipientRow)
            .where(RecipientRow.broadcast_id == broadcast_id)
            .order_by(RecipientRow.customer_id)
        )
        return list(result)

    async def outcome_counts(
        self, session: AsyncSession, broadcast_id: str
    ) -> list[tuple[str, str, int]]:
        """(status, reason, recipients) of the broadcast."""
        rows = await session.execute(
            select(RecipientRow.status, RecipientRow.reason, func.count())
            .where(RecipientRow.broadcast_id == broadcast_id)
            .group_by(RecipientRow.status, RecipientRow.reason)
        )
        return [(status, reason, int(n)) for status, reason, n in rows.all()]

    async def delivery_counts(self, session: AsyncSession, broadcast_id: str) -> dict[str, int]:
        """Recipients by delivery outcome ("delivered", "failed") of the broadcast."""
        rows = await session.execute(
            select(RecipientRow.delivery, func.count())
            .where(RecipientRow.broadcast_id == broadcast_id, RecipientRow.delivery != "")
            .group_by(RecipientRow.delivery)
        )
        return {delivery: int(n) for delivery, n in rows.all()}

    async def set_delivery(
        self,
        session: AsyncSession,
        tenant: str,
        broadcast_id: str,
        customer_id: str,
        message_id: str,
        *,
        delivery: str,
        errcode: int,
    ) -> bool:
        """Records the outcome on the recipient the send's key names, else (the customer was
        merged since) on the recipient holding the gateway's send id."""
        by_key = (
            RecipientRow.broadcast_id == broadcast_id,
            RecipientRow.customer_id == customer_id,
        )
        by_send = (RecipientRow.tenant_id == tenant, RecipientRow.message_id == message_id)
        for where in (by_key, by_send) if message_id else (by_key,):
            result = await session.execute(
                update(RecipientRow)
                .where(*where)
                .values(delivery=delivery, delivery_errcode=errcode)
                .execution_options(synchronize_session=False)
            )
            if _rowcount(result):
                return True
        return False

    async def unfinished(self, session: AsyncSession, broadcast_id: str) -> int:
        value = await session.scalar(
            select(func.count()).where(
                RecipientRow.broadcast_id == broadcast_id,
                RecipientRow.status.in_(("scheduled", "sending")),
            )
        )
        return int(value or 0)

    async def consent_now(self, session: AsyncSession, broadcast_id: str, customer_id: str) -> str:
        """Why the recipient may not be messaged now ("" if they may): reads the activity table
        (activity owns it), which follows unsubscribes and consent as they happen."""
        row = (
            await session.execute(
                select(ActivityRow.unsubscribed, ActivityRow.consent)
                .join(
                    RecipientRow,
                    and_(
                        ActivityRow.tenant_id == RecipientRow.tenant_id,
                        ActivityRow.customer_id == RecipientRow.customer_id,
                    ),
                )
                .where(
                    RecipientRow.broadcast_id == broadcast_id,
                    RecipientRow.customer_id == customer_id,
                )
            )
        ).first()
        if row is None:
            return "unknown_customer"
        unsubscribed, consent = row
        return "unsubscribed" if unsubscribed else "" if consent else "no_consent"

    async def due(
        self, session: AsyncSession, now: datetime, limit: int
    ) -> list[tuple[RecipientRow, BroadcastRow, str, str, str, datetime | None]]:
        """(recipient, its broadcast, contact kind, scope, value, last interaction) due by
        `now`, earliest first. Reads the activity table (activity owns it) for where the
        message goes and whether WeChat's 48-hour window is open."""
        rows = await session.execute(
            select(
                RecipientRow,
                BroadcastRow,
                ActivityRow.contact_kind,
                ActivityRow.contact_scope,
                ActivityRow.contact_value,
                ActivityRow.last_interaction_at,
            )
            .join(BroadcastRow, BroadcastRow.id == RecipientRow.broadcast_id)
            .join(
                ActivityRow,
                and_(
                    ActivityRow.tenant_id == RecipientRow.tenant_id,
                    ActivityRow.customer_id == RecipientRow.customer_id,
                ),
            )
            .where(RecipientRow.status == "scheduled", RecipientRow.send_at <= now)
            .order_by(RecipientRow.send_at)
            .limit(limit)
        )
        return [(r, b, k, s, v, i) for r, b, k, s, v, i in rows.all()]

    async def set_status(
        self,
        session: AsyncSession,
        broadcast_id: str,
        customer_id: str,
        *,
        was: str,
        **values: object,
    ) -> bool:
        """Moves one recipient from status `was` (one UPDATE); False if it was not in it."""
        result = await session.execute(
            update(RecipientRow)
            .where(
                RecipientRow.broadcast_id == broadcast_id,
                RecipientRow.customer_id == customer_id,
                RecipientRow.status == was,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def requeue_claimed_before(self, session: AsyncSession, claimed_before: datetime) -> int:
        result = await session.execute(
            update(RecipientRow)
            .where(RecipientRow.status == "sending", RecipientRow.sent_at < claimed_before)
            .values(status="scheduled", sent_at=None)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result)

    # --- customer events ---------------------------------------------------------------------

    async def repoint(self, session: AsyncSession, tenant: str, merged: str, survivor: str) -> None:
        """The merged customer's recipient rows become the survivor's (one per broadcast)."""
        keep = select(RecipientRow.broadcast_id).where(
            RecipientRow.tenant_id == tenant, RecipientRow.customer_id == survivor
        )
        await session.execute(
            delete(RecipientRow).where(
                RecipientRow.tenant_id == tenant,
                RecipientRow.customer_id == merged,
                RecipientRow.broadcast_id.in_(keep),
            )
        )
        columns = [(RecipientRow, "customer_id")]
        await repoint_customer(session, columns, tenant_id=tenant, from_id=merged, to_id=survivor)

    async def forget(self, session: AsyncSession, tenant: str, ids: list[str]) -> None:
        await session.execute(
            delete(RecipientRow).where(
                RecipientRow.tenant_id == tenant, RecipientRow.customer_id.in_(ids)
            )
        )
