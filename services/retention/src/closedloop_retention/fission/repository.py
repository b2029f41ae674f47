"""Every query of fission_rewards (the table this concept owns)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.models import FissionRewardRow


class FissionRepository:
    async def find(
        self, session: AsyncSession, tenant: str, campaign_id: str, participant_id: str
    ) -> FissionRewardRow | None:
        return await session.get(FissionRewardRow, (tenant, campaign_id, participant_id))

    async def add(self, session: AsyncSession, row: FissionRewardRow) -> None:
        session.add(row)
        await session.flush()
