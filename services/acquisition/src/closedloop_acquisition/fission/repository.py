"""Every query on fission participants; the only writer of that table."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete as delete_rows
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_acquisition.models import FissionParticipantRow


async def add(session: AsyncSession, row: FissionParticipantRow) -> None:
    session.add(row)
    await session.flush()


async def participant(
    session: AsyncSession, tenant_id: str, campaign_id: str, customer_id: str
) -> FissionParticipantRow | None:
    found = await session.execute(
        select(FissionParticipantRow).where(
            FissionParticipantRow.tenant_id == tenant_id,
            FissionParticipantRow.campaign_id == campaign_id,
            FissionParticipantRow.customer_id == customer_id,
        )
    )
    return found.scalar_one_or_none()


async def participant_of_channel(
    session: AsyncSession, tenant_id: str, channel_id: str
) -> FissionParticipantRow | None:
    # Locked: invites counted by two workers (replicas) at once must both count.
    found = await session.execute(
        select(FissionParticipantRow)
        .where(
            FissionParticipantRow.tenant_id == tenant_id,
            FissionParticipantRow.channel_id == channel_id,
        )
        .with_for_update()
    )
    return found.scalar_one_or_none()


async def participants_of_customers(
    session: AsyncSession, tenant_id: str, customer_ids: list[str]
) -> list[FissionParticipantRow]:
    """Locked (a merge or unmerge sums invitations: a scan counting one meanwhile must wait)."""
    found = await session.execute(
        select(FissionParticipantRow)
        .where(
            FissionParticipantRow.tenant_id == tenant_id,
            FissionParticipantRow.customer_id.in_(customer_ids),
        )
        .order_by(FissionParticipantRow.id)
        .with_for_update()
    )
    return list(found.scalars())


async def delete(session: AsyncSession, row: FissionParticipantRow) -> None:
    await session.delete(row)


async def forget(session: AsyncSession, tenant_id: str, customer_ids: Sequence[str]) -> None:
    """Deletes these customers' participations."""
    await session.execute(
        delete_rows(FissionParticipantRow).where(
            FissionParticipantRow.tenant_id == tenant_id,
            FissionParticipantRow.customer_id.in_(customer_ids),
        )
    )
