"""Use cases of reps, assignment rules and leads. Takes the caller's session; never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_conversion.common import new_id, now, optional, required
from closedloop_conversion.models import AssignmentRuleRow, RepRow
from closedloop_conversion.sales.assignment import Assigner, AssignmentNotices
from closedloop_conversion.sales.batch import BatchCapture
from closedloop_conversion.sales.inputs import (
    CapturedLead,
    RepChanges,
    RepInput,
    labels,
    validate_capacity,
    validate_hours,
)
from closedloop_conversion.sales.policy import Rule
from closedloop_conversion.sales.repository import SalesRepository
from closedloop_conversion.sales.views import LeadView, RepView, RuleView
from loopkit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from loopkit.events import Outbox
from loopkit.views import view_of

# Leads assigned per drain of the waiting queue; the rest wait for the next capacity change.
DRAIN_BATCH = 500


class SalesService:
    def __init__(self, outbox: Outbox, notices: AssignmentNotices | None = None) -> None:
        """`notices`: told of every lead given to a rep, in the same transaction (the service
        passes its `NoticeService`; without one, nobody is told)."""
        self._outbox = outbox
        self._repo = SalesRepository()
        self._assign = Assigner(outbox, self._repo, notices)
        self._batch = BatchCapture(outbox, self._repo, notices)

    # --- reps --------------------------------------------------------------------------------

    async def create_rep(self, session: AsyncSession, tenant: str, data: RepInput) -> RepView:
        wecom_user_id = required(data.wecom_user_id, "wecom_user_id", max_len=128)
        if await self._repo.rep_by_wecom(session, tenant, wecom_user_id) is not None:
            raise AlreadyExists("a rep with this WeCom user id exists", field="wecom_user_id")
        at = now()
        rep = RepRow(
            id=new_id(),
            tenant_id=tenant,
            wecom_user_id=wecom_user_id,
            name=optional(data.name, "name") or wecom_user_id,
            team=optional(data.team, "team", max_len=128),
            capacity=validate_capacity(data.capacity),
            working_hours=validate_hours(data.working_hours),
            regions=labels(data.regions, "regions"),
            tags=labels(data.tags, "tags"),
            status="active",
            open_leads=0,
            rr_seq=0,
            created_at=at,
            updated_at=at,
            departed_at=None,
        )
        self._repo.add(session, rep)
        await session.flush()
        await self.assign_waiting(session, tenant)
        return view_of(RepView, rep)

    async def get_rep(self, session: AsyncSession, tenant: str, rep_id: str) -> RepView:
        rep = await self._repo.rep(session, tenant, rep_id)
        if rep is None:
            raise NotFound("no such rep", field="rep_id")
        return view_of(RepView, rep)

    async def update_rep(
        self, session: AsyncSession, tenant: str, rep_id: str, changes: RepChanges
    ) -> RepView:
        rep = await self._repo.rep(session, tenant, rep_id, lock=True)
        if rep is None:
            raise NotFound("no such rep", field="rep_id")
        if changes.name is not None:
            rep.name = required(changes.name, "name")
        if changes.team is not None:
            rep.team = optional(changes.team, "team", max_len=128)
        if changes.capacity is not None:
            rep.capacity = validate_capacity(changes.capacity)
        if changes.working_hours is not None:
            rep.working_hours = validate_hours(changes.working_hours)
        if changes.regions is not None:
            rep.regions = labels(changes.regions, "regions")
        if changes.tags is not None:
            rep.tags = labels(changes.tags, "tags")
        if changes.status is not None and changes.status != rep.status:
            rep.status = changes.status
            rep.departed_at = now() if changes.status == "departed" else None
        rep.updated_at = now()
        await session.flush()
        # A departed rep keeps their open leads until TransferCustomers moves them with the
        # customers (or sends the ones without a friendship back to the queue).
        await self.assign_waiting(session, tenant)
        return view_of(RepView, rep)

    async def list_reps(
        self, session: AsyncSession, tenant: str, *, team: str = "", status: str = ""
    ) -> list[RepView]:
        return [
            view_of(RepView, r)
            for r in await self._repo.reps(session, tenant, team=team, status=status)
        ]

    # --- rules -------------------------------------------------------------------------------

    async def set_rule(
        self, session: AsyncSession, tenant: str, campaign_id: str, kind: Rule, team: str
    ) -> RuleView:
        campaign = required(campaign_id, "rule.campaign_id", max_len=64)
        row = await self._repo.rule(session, tenant, campaign)
        if row is None:
            row = AssignmentRuleRow(tenant_id=tenant, campaign_id=campaign)
            self._repo.add(session, row)
        row.kind = str(kind)
        row.team = optional(team, "rule.team", max_len=128)
        row.updated_at = now()
        await session.flush()
        return view_of(RuleView, row)

    # --- leads -------------------------------------------------------------------------------

    async def capture_leads(
        self, session: AsyncSession, leads: Sequence[tuple[str, CapturedLead]]
    ) -> None:
        """Leads from acquisition, as `(tenant, lead)` in the order they came: each stored once
        and assigned by its campaign's rule, or left waiting; set-based (sales/batch.py), with the
        choices `Assigner.by_rule` would make for them one after the other."""
        await self._batch.capture(session, leads)

    async def get_lead(self, session: AsyncSession, tenant: str, lead_id: str) -> LeadView:
        lead = await self._repo.lead(session, tenant, lead_id)
        if lead is None:
            raise NotFound("no such lead", field="lead_id")
        return view_of(LeadView, lead)

    async def list_leads(
        self,
        session: AsyncSession,
        tenant: str,
        *,
        rep_id: str = "",
        status: str = "",
        customer_id: str = "",
    ) -> list[LeadView]:
        leads = await self._repo.leads(
            session, tenant, rep_id=rep_id, status=status, customer_id=customer_id
        )
        return [view_of(LeadView, lead) for lead in leads]

    async def assign_lead(
        self, session: AsyncSession, tenant: str, lead_id: str, rep_id: str, actor: str
    ) -> LeadView:
        lead = await self._repo.lead(session, tenant, lead_id, lock=True)
        if lead is None:
            raise NotFound("no such lead", field="lead_id")
        if lead.status != "unassigned":
            raise FailedPrecondition(
                f"lead is {lead.status}; use ReassignLead to move it", field="lead_id"
            )
        if not rep_id:
            if not await self._assign.by_rule(session, lead, actor=actor or "manual"):
                raise FailedPrecondition("no available rep: the lead keeps waiting", field="rep_id")
            return view_of(LeadView, lead)
        rep = await self._assign.available_rep(session, tenant, rep_id)
        await self._assign.give(
            session, lead, rep, rule="manual", reason="assigned by hand", actor=actor
        )
        return view_of(LeadView, lead)

    async def reassign_lead(
        self,
        session: AsyncSession,
        tenant: str,
        lead_id: str,
        *,
        rep_id: str,
        reason: str,
        actor: str,
    ) -> LeadView:
        lead = await self._repo.lead(session, tenant, lead_id, lock=True)
        if lead is None:
            raise NotFound("no such lead", field="lead_id")
        if lead.status in ("won", "lost"):
            raise FailedPrecondition(f"lead is closed ({lead.status})", field="lead_id")
        required(rep_id, "rep_id", max_len=26)
        if lead.rep_id == rep_id:
            return view_of(LeadView, lead)
        rep = await self._assign.available_rep(session, tenant, rep_id)
        await self._assign.release(session, lead)
        why = optional(reason, "reason", max_len=500)
        await self._assign.give(session, lead, rep, rule="manual", reason=why, actor=actor)
        await self.assign_waiting(session, tenant)
        return view_of(LeadView, lead)

    async def close_lead(
        self, session: AsyncSession, tenant: str, lead_id: str, outcome: str
    ) -> LeadView:
        if outcome not in ("won", "lost"):
            raise InvalidArgument("must be won or lost", field="outcome")
        lead = await self._repo.lead(session, tenant, lead_id, lock=True)
        if lead is None:
            raise NotFound("no such lead", field="lead_id")
        if lead.status == outcome:
            return view_of(LeadView, lead)
        if lead.status in ("won", "lost"):
            raise FailedPrecondition(f"lead is already {lead.status}", field="outcome")
        await self._assign.release(session, lead)
        lead.status = outcome
        lead.closed_at = now()
        await session.flush()
        await self.assign_waiting(session, tenant)
        return view_of(LeadView, lead)

    async def move_customer_leads(
        self,
        session: AsyncSession,
        tenant: str,
        customer_id: str,
        *,
        from_rep_id: str,
        to_rep_id: str,
        actor: str,
        reason: str,
    ) -> int:
        """A transfer takes the customer's open leads along (capacity does not stop it)."""
        leads = await self._repo.open_leads_of(session, tenant, customer_id, from_rep_id)
        if not leads:
            return 0
        to_rep = await self._repo.rep(session, tenant, to_rep_id, lock=True)
        if to_rep is None:
            raise NotFound("no such rep", field="to_rep_id")
        for lead in leads:
            await self._assign.release(session, lead)
            await self._assign.give(
                session, lead, to_rep, rule="transfer", reason=reason, actor=actor
            )
        return len(leads)

    async def requeue_leads(
        self, session: AsyncSession, tenant: str, rep_id: str, keep_customers: set[str]
    ) -> int:
        """Send a departed rep's open leads, except those of `keep_customers`, back to the queue
        (they are assigned by rule at once when someone has room)."""
        requeued = 0
        for lead in await self._repo.leads(session, tenant, rep_id=rep_id, status="assigned"):
            if lead.customer_id in keep_customers:
                continue
            await self._assign.release(session, lead)
            lead.status = "unassigned"
            lead.rep_id = None
            requeued += 1
        if requeued:
            await session.flush()
            await self.assign_waiting(session, tenant)
        return requeued

    async def tenants_waiting_on_caps(self, session: AsyncSession) -> list[str]:
        """Tenants with waiting leads of a capped channel (a new day may free their reps)."""
        return await self._repo.tenants_waiting_on_caps(session)

    async def assign_waiting(self, session: AsyncSession, tenant: str) -> int:
        """Give waiting leads to reps that have room now (a rep joined, or capacity freed)."""
        assigned = 0
        # Teams found with nobody available: they stay so for the rest of this drain.
        full_teams: set[str] = set()
        for lead in await self._repo.waiting_leads(session, tenant, DRAIN_BATCH):
            if await self._assign.by_rule(session, lead, actor="queue", full_teams=full_teams):
                assigned += 1
        return assigned

    async def note_follow_up(
        self, session: AsyncSession, tenant: str, customer_id: str, rep_id: str, at: datetime
    ) -> str | None:
        """The rep followed the customer up: stamps the first response on their open lead."""
        leads = await self._repo.open_leads_of(session, tenant, customer_id, rep_id)
        for lead in leads:
            if lead.first_follow_up_at is None:
                lead.first_follow_up_at = at
        return leads[-1].id if leads else None
