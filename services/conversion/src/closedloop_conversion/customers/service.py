"""customer.merged, .unmerged and .forgotten across every conversion table naming a customer.

The consumer only converts identity's event into these calls (decision 14): which rows carry a
customer id, and what of them is personal data, is the domain's knowledge.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_conversion.customers.privacy import erase_customers
from closedloop_conversion.models import CUSTOMER_COLUMNS, Base
from loopkit.customer_rows import forget_moves, give_back_customer, repoint_customer


class CustomerEvents:
    async def merged(
        self, session: AsyncSession, tenant: str, survivor: str, merged: str, merge_id: str
    ) -> None:
        """Every row of the merged customer now belongs to the survivor (logged under the merge).

        No table here has a uniqueness rule on the customer, so nothing collides."""
        if survivor == merged:
            return
        await repoint_customer(
            session,
            CUSTOMER_COLUMNS,
            tenant_id=tenant,
            from_id=merged,
            to_id=survivor,
            merge_id=merge_id,
        )

    async def unmerged(
        self, session: AsyncSession, tenant: str, restored: str, survivor: str, merge_id: str
    ) -> None:
        """The leads, ownerships, transfers, follow-ups, opportunities, orders and tasks that came
        with `restored` on that merge are its own again; what the survivor got since stays."""
        await give_back_customer(
            session,
            Base.metadata,
            tenant_id=tenant,
            merge_id=merge_id,
            restored_id=restored,
            survivor_id=survivor,
        )

    async def forgotten(self, session: AsyncSession, tenant: str, ids: Sequence[str]) -> None:
        """Personal data of the customers goes; the rows (counted in reports) stay."""
        await erase_customers(session, tenant, ids)
        await forget_moves(session, Base.metadata, tenant_id=tenant, customer_ids=ids)
