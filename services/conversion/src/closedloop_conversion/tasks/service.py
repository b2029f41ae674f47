"""Rep tasks: a win-back offer from retention becomes a call for the customer's owning rep (once
per offer); reps list their tasks and complete them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop_conversion.common import utc
from closedloop_conversion.models import RepTaskRow
from closedloop_conversion.notices.service import NoticeService
from closedloop_conversion.sales.repository import SalesRepository
from closedloop_conversion.tasks import repository as repo
from loopkit.errors import InvalidArgument, NotFound
from loopkit.views import view_of

# Reads of the sales concept's reps and their friendships (who owns the customer).
_sales = SalesRepository()

WIN_BACK = "win_back"
STATUSES = ("open", "done")
# A win-back call is due within a day of the offer (the coupon runs for two weeks).
WIN_BACK_DUE = timedelta(days=1)


@dataclass(frozen=True)
class RepTaskView:
    id: str
    rep_id: str
    customer_id: str
    kind: str
    source_id: str
    title: str
    status: str
    created_at: datetime
    due_at: datetime
    completed_at: datetime | None
    outcome_note: str
    # Whether the rep was told: pending | sent | failed | not_notified (and why).
    rep_notice: str
    rep_notice_detail: str


@dataclass(frozen=True)
class WinBackOffer:
    win_back_id: str
    customer_id: str
    owner_rep_id: str
    value_minor: int
    valid_until: datetime | None
    attempt: int


class TaskService:
    def __init__(self, notices: NoticeService) -> None:
        self._notices = notices

    async def win_back_offered(
        self, session: AsyncSession, tenant: str, offer: WinBackOffer, at: datetime
    ) -> RepTaskView | None:
        """The owner rep's task for the offer (once per offer). The owner is the rep holding
        the customer as a WeCom friend longest, else the rep retention named; None (no task)
        when neither is a rep of the tenant."""
        existing = await repo.by_source(session, tenant, WIN_BACK, offer.win_back_id)
        if existing is not None:
            return view_of(RepTaskView, existing)
        owners = await _sales.owner_rep_ids(session, tenant, offer.customer_id)
        rep_id = owners[0] if owners else offer.owner_rep_id
        rep = await _sales.rep(session, tenant, rep_id) if rep_id else None
        if rep is None or rep.status == "departed":
            return None  # nobody to call them: the offer still went to the customer
        at = utc(at)
        until = (
            f" (valid until {offer.valid_until.date().isoformat()})" if offer.valid_until else ""
        )
        row = RepTaskRow(
            id=str(ULID()),
            tenant_id=tenant,
            rep_id=rep_id,
            customer_id=offer.customer_id,
            kind=WIN_BACK,
            source_id=offer.win_back_id,
            title=(
                f"Win back customer {offer.customer_id}: offer #{offer.attempt}, a coupon of "
                f"{offer.value_minor / 100:.2f}{until}"
            )[:300],
            status="open",
            created_at=at,
            due_at=at + WIN_BACK_DUE,
            completed_at=None,
            outcome_note="",
            rep_notice="",
            rep_notice_detail="",
        )
        # The rep is told through a notice stored in the same transaction as the task.
        due = row.due_at.strftime("%Y-%m-%d %H:%M UTC")
        row.rep_notice, row.rep_notice_detail = await self._notices.enqueue(
            session, rep, f"task:{row.id}", f"New task: {row.title}. Due {due}.", at, task_id=row.id
        )
        session.add(row)
        await session.flush()
        return view_of(RepTaskView, row)

    async def listed(
        self, session: AsyncSession, tenant: str, rep_id: str, status: str, limit: int
    ) -> list[RepTaskView]:
        if status and status not in STATUSES:
            raise InvalidArgument("must be open or done", field="status")
        if not 0 <= limit <= 1000:
            raise InvalidArgument("must be within 0..1000", field="limit")
        rows = await repo.listed(session, tenant, rep_id, status, limit or 100)
        return [view_of(RepTaskView, r) for r in rows]

    async def complete(
        self, session: AsyncSession, tenant: str, task_id: str, note: str, at: datetime
    ) -> RepTaskView:
        if not task_id:
            raise InvalidArgument("a task id is required", field="task_id")
        if len(note) > 2000:
            raise InvalidArgument("at most 2000 characters", field="outcome_note")
        row = await repo.get(session, tenant, task_id)
        if row is None:
            raise NotFound("no such task", field="task_id")
        if row.status != "done":
            row.status, row.completed_at, row.outcome_note = "done", utc(at), note
            await session.flush()
        return view_of(RepTaskView, row)
