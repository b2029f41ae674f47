"""Every query of merge_policies."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_identity.models import MergePolicyRow


class PolicyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant_id: str) -> MergePolicyRow | None:
        return await self.session.get(MergePolicyRow, tenant_id)

    async def save(
        self, tenant_id: str, kinds: list[str], phone_verified: bool, at: datetime
    ) -> None:
        row = await self.session.get(MergePolicyRow, tenant_id)
        if row is None:
            self.session.add(
                MergePolicyRow(
                    tenant_id=tenant_id,
                    merge_kinds=kinds,
                    phone_requires_verification=phone_verified,
                    updated_at=at,
                )
            )
        else:
            row.merge_kinds, row.phone_requires_verification = kinds, phone_verified
            row.updated_at = at
