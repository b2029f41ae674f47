"""Erasure on customer.forgotten: personal data of the customer goes, aggregates stay."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_conversion.common import now
from closedloop_conversion.models import FollowUpRow, OwnershipRow, RepTaskRow


async def erase_customers(session: AsyncSession, tenant: str, customer_ids: Sequence[str]) -> None:
    ids = list(customer_ids)
    if not ids:
        return
    await session.execute(
        update(FollowUpRow)
        .where(FollowUpRow.tenant_id == tenant, FollowUpRow.customer_id.in_(ids))
        .values(summary="")
    )
    # Rep tasks: the rep's notes may describe the person; an open task has nobody left to call
    # (removed rather than completed, so the report does not count it as work done).
    await session.execute(
        update(RepTaskRow)
        .where(RepTaskRow.tenant_id == tenant, RepTaskRow.customer_id.in_(ids))
        .values(outcome_note="")
    )
    await session.execute(
        delete(RepTaskRow).where(
            RepTaskRow.tenant_id == tenant,
            RepTaskRow.customer_id.in_(ids),
            RepTaskRow.status == "open",
        )
    )
    rows = (
        await session.execute(
            select(OwnershipRow).where(
                OwnershipRow.tenant_id == tenant, OwnershipRow.customer_id.in_(ids)
            )
        )
    ).scalars()
    at = now()
    for row in rows:
        # The WeCom id is personal data; the row stays (counts in reports) under a placeholder.
        row.external_userid = f"forgotten:{row.id}"
        row.remark = ""
        if row.status == "active":
            row.status = "ended"
            row.ended_at = at
            row.end_reason = "forgotten"
