"""customer.merged and customer.forgotten across every conversion table naming a customer.

The consumer only converts identity's event into these calls (decision 14): which rows carry a
customer id, and what of them is personal data, is the domain's knowledge.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_conversion.customers.privacy import erase_customers
from closedloop_conversion.models import CUSTOMER_COLUMNS
from loopkit.customer_rows import repoint_customer


class CustomerEvents:
    async def merged(self, session: AsyncSession, tenant: str, survivor: str, merged: str) -> None:
        """Every row of the merged customer now belongs to the survivor."""
        await repoint_customer(
            session, CUSTOMER_COLUMNS, tenant_id=tenant, from_id=merged, to_id=survivor
        )

    async def forgotten(self, session: AsyncSession, tenant: str, ids: Sequence[str]) -> None:
        """Personal data of the customers goes; the rows (counted in reports) stay."""
        await erase_customers(session, tenant, ids)
