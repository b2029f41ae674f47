"""Every query of fission_rewards (the table this concept owns)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.models import FissionRewardRow
from loopkit.customer_rows import repoint_unique


class FissionRepository:
    async def find(
        self, session: AsyncSession, tenant: str, campaign_id: str, participant_id: str
    ) -> FissionRewardRow | None:
        return await session.get(FissionRewardRow, (tenant, campaign_id, participant_id))

    async def add(self, session: AsyncSession, row: FissionRewardRow) -> None:
        session.add(row)
        await session.flush()

    async def repoint(
        self, session: AsyncSession, tenant: str, merged: str, survivor: str, merge_id: str
    ) -> None:
        """The merged customer's rewards become the survivor's (one per campaign: when both
        reached a campaign's goal, the survivor's stands and the merged one's is set aside for
        an unmerge, which gives each its own back)."""
        await session.flush()
        await repoint_unique(
            session,
            FissionRewardRow,
            "participant_id",
            ["campaign_id"],
            tenant_id=tenant,
            from_id=merged,
            to_id=survivor,
            merge_id=merge_id,
        )
        session.expire_all()

    async def forget(self, session: AsyncSession, tenant: str, ids: Sequence[str]) -> None:
        await session.execute(
            delete(FissionRewardRow)
            .where(
                FissionRewardRow.tenant_id == tenant,
                FissionRewardRow.participant_id.in_(list(ids)),
            )
            .execution_options(synchronize_session=False)
        )
