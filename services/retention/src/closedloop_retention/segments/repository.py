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
        """How many customers match now and up to `sample` of their ids (compiled to one SQL
        query over the activity table, which activity owns)."""
        query = compiler.preview_query(tenant, node, now, sample)
        if sample == 0:
            return int(await session.scalar(query) or 0), []
        rows = (await session.execute(query)).all()
        if not rows:
            return 0, []
        return int(rows[0].total), [r.customer_id for r in rows]
