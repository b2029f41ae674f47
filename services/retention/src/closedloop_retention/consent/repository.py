"""The opt_outs table (this concept owns it), and the read of a customer's consent flags from
activity (activity owns that table and follows unsubscribes and form consent as they happen)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.models import ActivityRow, OptOutRow
from loopkit.customer_rows import repoint_unique


class ConsentRepository:
    async def flags(
        self, session: AsyncSession, tenant: str, customer_id: str
    ) -> tuple[bool, bool] | None:
        """(unsubscribed, consent) from activity; None for a customer retention does not know."""
        row = (
            await session.execute(
                select(ActivityRow.unsubscribed, ActivityRow.consent).where(
                    ActivityRow.tenant_id == tenant, ActivityRow.customer_id == customer_id
                )
            )
        ).first()
        return None if row is None else (bool(row[0]), bool(row[1]))

    async def opted_out(self, session: AsyncSession, tenant: str, customer_id: str) -> set[str]:
        """The channels the customer opted out of ("all" for every channel)."""
        rows = await session.scalars(
            select(OptOutRow.channel).where(
                OptOutRow.tenant_id == tenant, OptOutRow.customer_id == customer_id
            )
        )
        return set(rows)

    def add(self, session: AsyncSession, row: OptOutRow) -> None:
        session.add(row)

    async def repoint(
        self, session: AsyncSession, tenant: str, merged: str, survivor: str, merge_id: str
    ) -> None:
        """The merged customer's opt-outs become the survivor's (a withdrawal of either id of one
        person holds for the person; one of a channel both withdrew is set aside for an
        unmerge, which gives each id its own back)."""
        await session.flush()
        await repoint_unique(
            session,
            OptOutRow,
            "customer_id",
            ["channel"],
            tenant_id=tenant,
            from_id=merged,
            to_id=survivor,
            merge_id=merge_id,
        )
        session.expire_all()

    async def forget(self, session: AsyncSession, tenant: str, ids: Sequence[str]) -> None:
        await session.execute(
            delete(OptOutRow)
            .where(OptOutRow.tenant_id == tenant, OptOutRow.customer_id.in_(list(ids)))
            .execution_options(synchronize_session=False)
        )
