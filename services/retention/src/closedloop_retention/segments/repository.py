"""Every query of saved segments, and the counting of a segment's members."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.models import SegmentRow
from closedloop_retention.segments import compiler, language


class SegmentRepository:
    async def by_name(self, session: AsyncSession, tenant: str, name: str) -> SegmentRow | None:
        return await session.scalar(
            select(SegmentRow).where(SegmentRow.tenant_id == tenant, SegmentRow.name == name)
        )

    async def get(self, session: AsyncSession, segment_id: str) -> SegmentRow | None:
        return await session.get(SegmentRow, segment_id)

    async def add(self, session: AsyncSession, row: SegmentRow) -> None:
        session.add(row)
        await session.flush()

    async def preview(
        self, session: AsyncSession, tenant: str, node: language.Node, now: datetime, sample: int
    ) -> tuple[int, list[str]]:
        """How many customers match now and up to `sample` of their ids, first by id (compiled
        to SQL over the activity table, which activity owns): the count first, then the sample
        only when there are members, shaped by how many (compiler.sample_query)."""
        total = int(await session.scalar(compiler.count_query(tenant, node, now)) or 0)
        if sample == 0 or total == 0:
            return total, []
        query = compiler.sample_query(tenant, node, now, sample, members_counted=total)
        return total, list(await session.scalars(query))
