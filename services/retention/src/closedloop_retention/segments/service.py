"""Saved segments and previews."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop_retention.clock import utc
from closedloop_retention.models import SegmentRow
from closedloop_retention.segments import language
from closedloop_retention.segments.repository import SegmentRepository
from closedloop_retention.segments.views import SegmentView
from loopkit.errors import AlreadyExists, InvalidArgument, NotFound
from loopkit.views import view_of

MAX_SAMPLE = 100


class SegmentService:
    def __init__(self, repository: SegmentRepository | None = None) -> None:
        self._repo = repository or SegmentRepository()

    async def define(
        self, session: AsyncSession, tenant: str, name: str, expression: str, now: datetime
    ) -> SegmentView:
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidArgument("must be 1-100 characters", field="name")
        language.parse(expression)
        existing = await self._repo.by_name(session, tenant, name)
        if existing is not None:
            if existing.expression == expression:
                return view_of(SegmentView, existing)
            raise AlreadyExists(f"segment {name!r} exists with another expression", field="name")
        row = SegmentRow(
            id=str(ULID()), tenant_id=tenant, name=name, expression=expression, created_at=utc(now)
        )
        await self._repo.add(session, row)
        return view_of(SegmentView, row)

    async def get(self, session: AsyncSession, tenant: str, segment_id: str) -> SegmentRow:
        row = await self._repo.get(session, segment_id)
        if row is None or row.tenant_id != tenant:
            raise NotFound("no such segment", field="segment_id")
        return row

    async def resolve(
        self, session: AsyncSession, tenant: str, segment_id: str, expression: str
    ) -> tuple[str, str, language.Node]:
        """(segment id, expression, tree) of a saved segment or an ad-hoc expression."""
        if segment_id:
            row = await self.get(session, tenant, segment_id)
            return row.id, row.expression, language.parse(row.expression)
        return "", expression, language.parse(expression)

    async def preview(
        self, session: AsyncSession, tenant: str, node: language.Node, now: datetime, sample: int
    ) -> tuple[int, list[str]]:
        if sample < 0 or sample > MAX_SAMPLE:
            raise InvalidArgument(f"must be within 0..{MAX_SAMPLE}", field="sample_size")
        return await self._repo.preview(session, tenant, node, now, sample)

    async def preview_of(
        self,
        session: AsyncSession,
        tenant: str,
        segment_id: str,
        expression: str,
        *,
        now: datetime,
        sample: int,
    ) -> tuple[int, list[str]]:
        """How many customers a saved segment or an expression holds now, and a sample of them."""
        _, _, node = await self.resolve(session, tenant, segment_id, expression)
        return await self.preview(session, tenant, node, now, sample)
