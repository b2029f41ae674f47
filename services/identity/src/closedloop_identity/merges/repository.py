"""Every query of the merges table: which identities moved in a merge, and whether it was undone."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_identity.models import MergeRow


class MergeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: MergeRow) -> None:
        self.session.add(row)

    async def last_merge_of(self, tenant_id: str, merged_id: str) -> MergeRow | None:
        stmt = (
            select(MergeRow)
            .where(
                MergeRow.tenant_id == tenant_id,
                MergeRow.merged_id == merged_id,
                MergeRow.undone_at.is_(None),
            )
            .order_by(MergeRow.created_at.desc(), MergeRow.id.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalars().first()

    async def erase_personal_values(self, tenant_id: str, customer_ids: Sequence[str]) -> None:
        """Blank what a merge of these customers recorded about them: the identity that triggered
        it and the attributes it took (erasure)."""
        await self.session.execute(
            update(MergeRow)
            .where(
                MergeRow.tenant_id == tenant_id,
                or_(MergeRow.survivor_id.in_(customer_ids), MergeRow.merged_id.in_(customer_ids)),
            )
            .values(trigger=None, taken_attributes=None)
        )
