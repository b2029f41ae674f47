"""Every query of the ownership concept; the only writer of contact_ways, ownerships,
wecom_callbacks and transfers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from closedloop_conversion.models import (
    CallbackRow,
    ContactWayRow,
    OwnershipRow,
    RepRow,
    TransferRow,
)


class OwnershipRepository:
    """Contact ways, ownerships, WeCom callbacks and transfers: the tables ownership writes."""

    def add(
        self, session: AsyncSession, row: CallbackRow | ContactWayRow | OwnershipRow | TransferRow
    ) -> None:
        session.add(row)

    async def forget_contacts(
        self, session: AsyncSession, tenant: str, customer_ids: Sequence[str], at: datetime
    ) -> None:
        """customer.forgotten: the WeCom id is personal data; the rows stay (counts in reports)
        under a placeholder, and an active friendship ends."""
        rows = (
            await session.execute(
                select(OwnershipRow).where(
                    OwnershipRow.tenant_id == tenant, OwnershipRow.customer_id.in_(customer_ids)
                )
            )
        ).scalars()
        for row in rows:
            row.external_userid = f"forgotten:{row.id}"
            row.remark = ""
            if row.status == "active":
                row.status = "ended"
                row.ended_at = at
                row.end_reason = "forgotten"

    async def callback_seen(self, session: AsyncSession, key: str) -> bool:
        return await session.get(CallbackRow, key) is not None

    async def contact_way(
        self, session: AsyncSession, tenant: str, state: str
    ) -> ContactWayRow | None:
        if not state:
            return None
        return await session.get(ContactWayRow, (tenant, state))

    async def ownership(
        self, session: AsyncSession, tenant: str, corp_id: str, rep_id: str, external_userid: str
    ) -> OwnershipRow | None:
        query = (
            select(OwnershipRow)
            .where(
                OwnershipRow.tenant_id == tenant,
                OwnershipRow.corp_id == corp_id,
                OwnershipRow.rep_id == rep_id,
                OwnershipRow.external_userid == external_userid,
            )
            .with_for_update()
        )
        return (await session.execute(query)).scalar_one_or_none()

    async def ownership_by_id(
        self, session: AsyncSession, tenant: str, ownership_id: str
    ) -> OwnershipRow | None:
        query = select(OwnershipRow).where(
            OwnershipRow.tenant_id == tenant, OwnershipRow.id == ownership_id
        )
        return (await session.execute(query.with_for_update())).scalar_one_or_none()

    async def ownerships(
        self,
        session: AsyncSession,
        tenant: str,
        *,
        rep_id: str = "",
        customer_id: str = "",
        include_ended: bool = False,
        customer_ids: Sequence[str] = (),
    ) -> Sequence[OwnershipRow]:
        query = select(OwnershipRow).where(OwnershipRow.tenant_id == tenant)
        if rep_id:
            query = query.where(OwnershipRow.rep_id == rep_id)
        if customer_id:
            query = query.where(OwnershipRow.customer_id == customer_id)
        if customer_ids:
            query = query.where(OwnershipRow.customer_id.in_(list(customer_ids)))
        if not include_ended:
            query = query.where(OwnershipRow.status == "active")
        query = query.order_by(OwnershipRow.started_at, OwnershipRow.id)
        return (await session.execute(query)).scalars().all()

    async def customers_of_contact(
        self, session: AsyncSession, tenant: str, corp_id: str, external_userid: str
    ) -> list[str]:
        query = select(OwnershipRow.customer_id).where(
            OwnershipRow.tenant_id == tenant,
            OwnershipRow.corp_id == corp_id,
            OwnershipRow.external_userid == external_userid,
        )
        return list(dict.fromkeys((await session.execute(query)).scalars().all()))

    async def pending_transfer(
        self, session: AsyncSession, tenant: str, ownership_id: str
    ) -> TransferRow | None:
        query = select(TransferRow).where(
            TransferRow.tenant_id == tenant,
            TransferRow.ownership_id == ownership_id,
            TransferRow.status == "pending",
        )
        return (await session.execute(query.with_for_update())).scalars().first()

    async def pending_transfer_to(
        self, session: AsyncSession, tenant: str, customer_ids: Sequence[str], to_rep_id: str
    ) -> TransferRow | None:
        query = select(TransferRow).where(
            TransferRow.tenant_id == tenant,
            TransferRow.customer_id.in_(list(customer_ids)),
            TransferRow.to_rep_id == to_rep_id,
            TransferRow.status == "pending",
        )
        return (await session.execute(query.with_for_update())).scalars().first()

    async def on_job_transfers_since(
        self, session: AsyncSession, tenant: str, customer_id: str, since: datetime
    ) -> int:
        query = select(func.count()).where(
            TransferRow.tenant_id == tenant,
            TransferRow.customer_id == customer_id,
            TransferRow.mode == "on_job",
            TransferRow.status.in_(["pending", "completed"]),
            TransferRow.requested_at >= since,
        )
        return int((await session.execute(query)).scalar_one())

    async def transfer(
        self, session: AsyncSession, tenant: str, transfer_id: str
    ) -> TransferRow | None:
        query = select(TransferRow).where(
            TransferRow.tenant_id == tenant, TransferRow.id == transfer_id
        )
        return (await session.execute(query.with_for_update())).scalar_one_or_none()

    async def transfers(
        self, session: AsyncSession, tenant: str, *, rep_id: str = "", status: str = ""
    ) -> Sequence[TransferRow]:
        query = select(TransferRow).where(TransferRow.tenant_id == tenant)
        if rep_id:
            query = query.where(
                (TransferRow.from_rep_id == rep_id) | (TransferRow.to_rep_id == rep_id)
            )
        if status:
            query = query.where(TransferRow.status == status)
        query = query.order_by(TransferRow.requested_at, TransferRow.id)
        return (await session.execute(query)).scalars().all()

    async def due_transfers(
        self, session: AsyncSession, tenant: str, before: datetime, limit: int = 1000
    ) -> Sequence[TransferRow]:
        query = select(TransferRow).where(
            TransferRow.status == "pending", TransferRow.requested_at <= before
        )
        if tenant:
            query = query.where(TransferRow.tenant_id == tenant)
        query = (
            query.order_by(TransferRow.requested_at).limit(limit).with_for_update(skip_locked=True)
        )
        return (await session.execute(query)).scalars().all()

    async def pending_wecom_transfers(
        self, session: AsyncSession, *, requested: bool, limit: int
    ) -> Sequence[Row[TransferRow, str, str, str, str]]:
        """Pending transfers of every tenant WeCom has (or has not yet) been asked about, locked,
        each with (corp_id, external_userid, handover rep's and takeover rep's WeCom user ids);
        a read of the reps' WeCom user ids from sales' table."""
        handover, takeover = aliased(RepRow), aliased(RepRow)
        asked = TransferRow.wecom_requested_at
        query = (
            select(
                TransferRow,
                OwnershipRow.corp_id,
                OwnershipRow.external_userid,
                handover.wecom_user_id,
                takeover.wecom_user_id,
            )
            .join(OwnershipRow, OwnershipRow.id == TransferRow.ownership_id)
            .join(handover, handover.id == TransferRow.from_rep_id)
            .join(takeover, takeover.id == TransferRow.to_rep_id)
            .where(
                TransferRow.status == "pending",
                asked.is_not(None) if requested else asked.is_(None),
            )
            .order_by(TransferRow.requested_at, TransferRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=TransferRow)
        )
        return (await session.execute(query)).all()
