"""Every query of the sales concept; the only writer of reps, assignment_rules, leads and
lead_assignments."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Executable,
    Integer,
    Row,
    String,
    Table,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_conversion.models import (
    AssignmentRuleRow,
    LeadAssignmentRow,
    LeadRow,
    OwnershipRow,
    RepRow,
)
from loopkit.bulk import insert_rows

# The tables the set-based batch writes with Core statements (no ORM objects to flush).
_REPS = cast(Table, RepRow.__table__)
_LEADS = cast(Table, LeadRow.__table__)
_ASSIGNMENTS = cast(Table, LeadAssignmentRow.__table__)


def literal_ids(ids: Collection[str]) -> BindParameter[str]:
    """An IN list sent as literals, not as parameters of a prepared statement: the batch
    look-ups run on a table that may have grown from empty since the connection prepared the
    statement, and PostgreSQL then keeps the generic plan it made for the small table (a
    sequential scan: 16-30 ms a batch at 10,000 rows in bench/assignment.py, against an index
    look-up). With literals each batch is planned for the table as it is."""
    return bindparam("ids", sorted(ids), type_=String, expanding=True, literal_execute=True)


class SalesRepository:
    """Reps, assignment rules, leads and the assignment history: the tables sales writes."""

    async def rep(
        self, session: AsyncSession, tenant: str, rep_id: str, *, lock: bool = False
    ) -> RepRow | None:
        query = select(RepRow).where(RepRow.tenant_id == tenant, RepRow.id == rep_id)
        if lock:
            query = query.with_for_update()
        return (await session.execute(query)).scalar_one_or_none()

    async def reps_by_id(
        self, session: AsyncSession, tenant: str, rep_ids: Collection[str]
    ) -> dict[str, Row[Any]]:
        """Several reps of a tenant in one query, as plain rows by id (unknown ids are absent)."""
        if not rep_ids:
            return {}
        query = select(_REPS).where(_REPS.c.tenant_id == tenant, _REPS.c.id.in_(list(rep_ids)))
        return {row.id: row for row in (await session.execute(query)).all()}

    async def rep_by_wecom(
        self, session: AsyncSession, tenant: str, wecom_user_id: str
    ) -> RepRow | None:
        query = select(RepRow).where(
            RepRow.tenant_id == tenant, RepRow.wecom_user_id == wecom_user_id
        )
        return (await session.execute(query)).scalar_one_or_none()

    async def reps(
        self, session: AsyncSession, tenant: str, *, team: str = "", status: str = ""
    ) -> Sequence[RepRow]:
        query = select(RepRow).where(RepRow.tenant_id == tenant)
        if team:
            query = query.where(RepRow.team == team)
        if status:
            query = query.where(RepRow.status == status)
        return (
            (await session.execute(query.order_by(RepRow.team, RepRow.name, RepRow.id)))
            .scalars()
            .all()
        )

    async def lock_pool(
        self, session: AsyncSession, tenant: str, team: str, extra_ids: Sequence[str] = ()
    ) -> list[RepRow]:
        """The active reps of a team (every active rep when the team is empty), plus `extra_ids`,
        locked in id order so concurrent assignments take turns instead of colliding."""
        in_pool = RepRow.team == team if team else RepRow.id.is_not(None)
        if extra_ids:
            in_pool = in_pool | RepRow.id.in_(list(extra_ids))
        query = (
            select(RepRow)
            .where(RepRow.tenant_id == tenant, RepRow.status == "active", in_pool)
            .order_by(RepRow.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return list((await session.execute(query)).scalars().all())

    def add(
        self, session: AsyncSession, row: RepRow | AssignmentRuleRow | LeadRow | LeadAssignmentRow
    ) -> None:
        session.add(row)

    async def take_turn(self, session: AsyncSession, rep: RepRow) -> None:
        """The rep goes to the back of the round-robin queue of its tenant."""
        rep.rr_seq = await self.next_rr_seq(session, rep.tenant_id)
        await session.flush()

    async def next_rr_seq(self, session: AsyncSession, tenant: str) -> int:
        query = select(func.max(RepRow.rr_seq)).where(RepRow.tenant_id == tenant)
        return int((await session.execute(query)).scalar_one() or 0) + 1

    async def rule(
        self, session: AsyncSession, tenant: str, campaign_id: str
    ) -> AssignmentRuleRow | None:
        return await session.get(AssignmentRuleRow, (tenant, campaign_id))

    async def lead(
        self, session: AsyncSession, tenant: str, lead_id: str, *, lock: bool = False
    ) -> LeadRow | None:
        query = select(LeadRow).where(LeadRow.tenant_id == tenant, LeadRow.id == lead_id)
        if lock:
            query = query.with_for_update()
        return (await session.execute(query)).scalar_one_or_none()

    async def lead_any_tenant(self, session: AsyncSession, lead_id: str) -> LeadRow | None:
        return await session.get(LeadRow, lead_id)

    async def leads(
        self,
        session: AsyncSession,
        tenant: str,
        *,
        rep_id: str = "",
        status: str = "",
        customer_id: str = "",
        limit: int = 1000,
    ) -> Sequence[LeadRow]:
        query = select(LeadRow).where(LeadRow.tenant_id == tenant)
        if rep_id:
            query = query.where(LeadRow.rep_id == rep_id)
        if status:
            query = query.where(LeadRow.status == status)
        if customer_id:
            query = query.where(LeadRow.customer_id == customer_id)
        query = query.order_by(LeadRow.captured_at, LeadRow.id).limit(limit)
        return (await session.execute(query)).scalars().all()

    async def waiting_leads(
        self, session: AsyncSession, tenant: str, limit: int
    ) -> Sequence[LeadRow]:
        query = (
            select(LeadRow)
            .where(LeadRow.tenant_id == tenant, LeadRow.status == "unassigned")
            .order_by(LeadRow.captured_at, LeadRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await session.execute(query)).scalars().all()

    async def open_leads_of(
        self, session: AsyncSession, tenant: str, customer_id: str, rep_id: str
    ) -> Sequence[LeadRow]:
        query = select(LeadRow).where(
            LeadRow.tenant_id == tenant,
            LeadRow.customer_id == customer_id,
            LeadRow.rep_id == rep_id,
            LeadRow.status == "assigned",
        )
        return (await session.execute(query.with_for_update())).scalars().all()

    async def owner_rep_ids(
        self, session: AsyncSession, tenant: str, customer_id: str
    ) -> list[str]:
        """Reps holding an active friendship with the customer, longest-standing first (a read of
        ownership's table: the sticky rule asks it)."""
        if not customer_id:
            return []
        query = (
            select(OwnershipRow.rep_id)
            .where(
                OwnershipRow.tenant_id == tenant,
                OwnershipRow.customer_id == customer_id,
                OwnershipRow.status == "active",
            )
            .order_by(OwnershipRow.started_at)
        )
        return list((await session.execute(query)).scalars().all())

    async def channel_leads_since(
        self,
        session: AsyncSession,
        tenant: str,
        channel_id: str,
        rep_ids: Sequence[str],
        since: datetime,
    ) -> dict[str, int]:
        """How many leads of the channel each rep was given since `since` (daily caps)."""
        if not rep_ids:
            return {}
        query = (
            select(
                LeadAssignmentRow.to_rep_id, func.count(func.distinct(LeadAssignmentRow.lead_id))
            )
            .join(LeadRow, LeadRow.id == LeadAssignmentRow.lead_id)
            .where(
                LeadAssignmentRow.tenant_id == tenant,
                LeadAssignmentRow.to_rep_id.in_(list(rep_ids)),
                LeadAssignmentRow.at >= since,
                LeadRow.channel_id == channel_id,
            )
            .group_by(LeadAssignmentRow.to_rep_id)
        )
        return {rep_id: int(n) for rep_id, n in (await session.execute(query)).all()}

    async def tenants_waiting_on_caps(self, session: AsyncSession) -> list[str]:
        """Tenants with waiting leads of a capped channel (a new day may free their reps)."""
        query = (
            select(LeadRow.tenant_id)
            .where(LeadRow.status == "unassigned", LeadRow.daily_cap > 0)
            .distinct()
        )
        return list((await session.execute(query)).scalars().all())

    # --- set-based: a batch of captured leads (sales/batch.py) --------------------------------

    async def existing_lead_ids(self, session: AsyncSession, lead_ids: Collection[str]) -> set[str]:
        """Which of `lead_ids` are stored already, in any tenant (ids as literals: see
        `literal_ids`)."""
        if not lead_ids:
            return set()
        query = select(LeadRow.id).where(LeadRow.id.in_(literal_ids(lead_ids)))
        return set((await session.execute(query)).scalars().all())

    async def rules_of(
        self, session: AsyncSession, tenant: str, campaign_ids: Collection[str]
    ) -> dict[str, AssignmentRuleRow]:
        if not campaign_ids:
            return {}
        query = select(AssignmentRuleRow).where(
            AssignmentRuleRow.tenant_id == tenant,
            AssignmentRuleRow.campaign_id.in_(list(campaign_ids)),
        )
        return {row.campaign_id: row for row in (await session.execute(query)).scalars().all()}

    async def owners_of(
        self, session: AsyncSession, tenant: str, customer_ids: Collection[str]
    ) -> dict[str, list[str]]:
        """`owner_rep_ids` of several customers in one query."""
        if not customer_ids:
            return {}
        query = (
            select(OwnershipRow.customer_id, OwnershipRow.rep_id)
            .where(
                OwnershipRow.tenant_id == tenant,
                OwnershipRow.customer_id.in_(list(customer_ids)),
                OwnershipRow.status == "active",
            )
            .order_by(OwnershipRow.started_at)
        )
        owners: dict[str, list[str]] = {}
        for customer_id, rep_id in (await session.execute(query)).all():
            owners.setdefault(customer_id, []).append(rep_id)
        return owners

    async def lock_active_reps(self, session: AsyncSession, tenant: str) -> Sequence[Row[Any]]:
        """Every active rep of the tenant (a superset of any pool `lock_pool` takes), locked in id
        order like `lock_pool`, as plain rows: the batch keeps their turns in memory and writes
        them back with `set_turns`."""
        reps = _REPS
        query = (
            select(reps)
            .where(reps.c.tenant_id == tenant, reps.c.status == "active")
            .order_by(reps.c.id)
            .with_for_update()
        )
        return (await session.execute(query)).all()

    async def channel_leads_by_rep(
        self, session: AsyncSession, tenant: str, channel_ids: Collection[str], since: datetime
    ) -> dict[tuple[str, str], int]:
        """`channel_leads_since` of several channels and every rep: {(channel, rep): leads}."""
        if not channel_ids:
            return {}
        query = (
            select(
                LeadRow.channel_id,
                LeadAssignmentRow.to_rep_id,
                func.count(func.distinct(LeadAssignmentRow.lead_id)),
            )
            .join(LeadRow, LeadRow.id == LeadAssignmentRow.lead_id)
            .where(
                LeadAssignmentRow.tenant_id == tenant,
                LeadAssignmentRow.at >= since,
                LeadRow.channel_id.in_(list(channel_ids)),
            )
            .group_by(LeadRow.channel_id, LeadAssignmentRow.to_rep_id)
        )
        return {
            (channel, rep_id): int(n) for channel, rep_id, n in (await session.execute(query)).all()
        }

    async def insert_leads(
        self,
        session: AsyncSession,
        leads: Sequence[dict[str, Any]],
        assignments: Sequence[dict[str, Any]],
    ) -> None:
        """New leads and their assignment history, one statement per table (one list per
        column: `loopkit.bulk.insert_rows`)."""
        await insert_rows(session, _LEADS, leads)
        await insert_rows(session, _ASSIGNMENTS, assignments)

    async def set_turns(self, session: AsyncSession, turns: Sequence[dict[str, Any]]) -> None:
        """Reps' {"rep_id", "to_open_leads", "to_rr_seq"} after a batch: one UPDATE from arrays
        on PostgreSQL (built once), an executemany elsewhere."""
        if not turns:
            return
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(
                _TURNS_FROM_ARRAYS,
                {
                    "rep_ids": [t["rep_id"] for t in turns],
                    "open_leads": [t["to_open_leads"] for t in turns],
                    "rr_seqs": [t["to_rr_seq"] for t in turns],
                },
            )
            return
        reps = _REPS
        query = (
            update(reps)
            .where(reps.c.id == bindparam("rep_id"))
            .values(open_leads=bindparam("to_open_leads"), rr_seq=bindparam("to_rr_seq"))
        )
        await session.execute(query, list(turns))


def _turns_from_arrays() -> Executable:
    turns = (
        func.unnest(
            bindparam("rep_ids", type_=ARRAY(String)),
            bindparam("open_leads", type_=ARRAY(Integer)),
            bindparam("rr_seqs", type_=ARRAY(BigInteger)),
        )
        .table_valued("rep_id", "open_leads", "rr_seq")
        .render_derived(with_types=False)
    )
    return (
        update(_REPS)
        .where(_REPS.c.id == turns.c.rep_id)
        .values(open_leads=turns.c.open_leads, rr_seq=turns.c.rr_seq)
    )


_TURNS_FROM_ARRAYS = _turns_from_arrays()
