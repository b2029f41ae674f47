"""Choosing and giving a lead to a rep: the rule, the locked pool, caps, the turn, the history
and `lead.assigned`. The sales use cases call it; it never commits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1 import conversion_events_pb2 as ev
from closedloop_conversion import metrics
from closedloop_conversion.common import new_id, now
from closedloop_conversion.models import AssignmentRuleRow, LeadAssignmentRow, LeadRow, RepRow
from closedloop_conversion.notices.service import TOLD, Assigned
from closedloop_conversion.sales.policy import Candidate, Rule, choose, day_start, on_duty
from closedloop_conversion.sales.repository import SalesRepository
from loopkit.errors import FailedPrecondition, NotFound
from loopkit.events import Outbox
from loopkit.uow import on_commit


class RepState(Protocol):
    """What choosing needs of a rep: a RepRow, or a batch's in-memory copy of one."""

    @property
    def id(self) -> str: ...
    @property
    def capacity(self) -> int: ...
    @property
    def open_leads(self) -> int: ...
    @property
    def rr_seq(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def regions(self) -> list[str]: ...
    @property
    def tags(self) -> list[str]: ...
    @property
    def working_hours(self) -> Mapping[str, Any]: ...


def candidate(
    rep: RepState, at: datetime, capped: bool = False, *, duty: bool | None = None
) -> Candidate:
    """`duty`: whether the rep is on duty at `at`, when the caller worked it out already."""
    return Candidate(
        rep_id=rep.id,
        capacity=rep.capacity,
        open_leads=rep.open_leads,
        rr_seq=rep.rr_seq,
        active=rep.status == "active",
        regions=tuple(rep.regions),
        tags=tuple(rep.tags),
        on_duty=on_duty(rep.working_hours, at) if duty is None else duty,
        capped=capped,
    )


def rule_of(rule_row: AssignmentRuleRow | None, lead_team: str) -> tuple[Rule, str]:
    """The rule a lead is assigned by and the team it goes to (its campaign's, else its own)."""
    rule = Rule(rule_row.kind) if rule_row is not None else Rule.ROUND_ROBIN
    return rule, (rule_row.team if rule_row is not None else "") or lead_team


def rule_reason(rule_row: AssignmentRuleRow | None, rule: Rule) -> str:
    return f"campaign rule {rule}" if rule_row is not None else "owner team round-robin"


def lead_assigned(
    lead_id: str, campaign_id: str, *, rep_id: str, team: str, previous: str, rule: str, reason: str
) -> ev.LeadAssigned:
    return ev.LeadAssigned(
        lead_id=lead_id,
        campaign_id=campaign_id,
        rep_id=rep_id,
        previous_rep_id=previous,
        team_id=team,
        rule=rule,
        reason=reason,
    )


class AssignmentNotices(Protocol):
    """Tells reps of the leads given to them (`NoticeService`), in the assignment's transaction."""

    async def leads_assigned(
        self,
        session: AsyncSession,
        assigned: Sequence[Assigned],
        *,
        reps: Mapping[str, Any] | None = None,
        new_leads: bool = False,
    ) -> None: ...


class Assigner:
    def __init__(
        self, outbox: Outbox, repo: SalesRepository, notices: AssignmentNotices | None = None
    ) -> None:
        self._outbox = outbox
        self._repo = repo
        self._notices = notices

    async def available_rep(self, session: AsyncSession, tenant: str, rep_id: str) -> RepRow:
        rep = await self._repo.rep(session, tenant, rep_id, lock=True)
        if rep is None:
            raise NotFound("no such rep", field="rep_id")
        if rep.status != "active":
            raise FailedPrecondition("the rep has departed", field="rep_id")
        if rep.open_leads >= rep.capacity:
            raise FailedPrecondition("the rep is at capacity", field="rep_id")
        return rep

    async def by_rule(
        self,
        session: AsyncSession,
        lead: LeadRow,
        *,
        actor: str,
        full_teams: set[str] | None = None,
    ) -> bool:
        tenant = lead.tenant_id
        rule_row = (
            await self._repo.rule(session, tenant, lead.campaign_id) if lead.campaign_id else None
        )
        rule, team = rule_of(rule_row, lead.team)
        if full_teams is not None and team in full_teams:
            return False
        owners: list[str] = []
        if rule is Rule.STICKY:
            owners = await self._repo.owner_rep_ids(session, tenant, lead.customer_id)
        pool = await self._repo.lock_pool(session, tenant, team, owners)
        if team and not any(r.team == team for r in pool):
            team = ""  # nobody works in that team: any rep of the tenant
            pool = await self._repo.lock_pool(session, tenant, team, owners)
        at = now()
        capped = await self.capped(session, lead, pool, at)
        choice = choose(
            rule,
            [candidate(r, at, r.id in capped) for r in pool],
            region=lead.region,
            tags=lead.tags,
            sticky_rep_ids=owners,
        )
        if choice is None:
            # A cap is per channel: the team may still have room for other channels' leads.
            if full_teams is not None and not owners and not capped:
                full_teams.add(rule_of(rule_row, lead.team)[1])
                full_teams.add(team)
            return False  # waits as unassigned until a rep has room
        rep = next(r for r in pool if r.id == choice.rep_id)
        reason = rule_reason(rule_row, rule)
        await self.give(session, lead, rep, rule=choice.rule, reason=reason, actor=actor, pool=pool)
        return True

    async def capped(
        self, session: AsyncSession, lead: LeadRow, pool: Sequence[RepRow], at: datetime
    ) -> set[str]:
        """The reps of `pool` already given the lead's channel's daily cap of leads today."""
        if lead.daily_cap <= 0 or not lead.channel_id:
            return set()
        given = await self._repo.channel_leads_since(
            session, lead.tenant_id, lead.channel_id, [r.id for r in pool], day_start(at)
        )
        return {rep_id for rep_id, n in given.items() if n >= lead.daily_cap}

    async def release(self, session: AsyncSession, lead: LeadRow) -> None:
        if lead.status == "assigned" and lead.rep_id:
            old = await self._repo.rep(session, lead.tenant_id, lead.rep_id, lock=True)
            if old is not None:
                old.open_leads = max(0, old.open_leads - 1)

    async def give(
        self,
        session: AsyncSession,
        lead: LeadRow,
        rep: RepRow,
        *,
        rule: str,
        reason: str,
        actor: str,
        pool: Sequence[RepRow] = (),
    ) -> None:
        """`pool`: the locked reps the choice was made among (the turn moves past all of them)."""
        previous = lead.rep_id or ""
        at = now()
        lead.rep_id = rep.id
        lead.status = "assigned"
        lead.rule = rule
        lead.assigned_at = at
        lead.first_follow_up_at = None
        rep.open_leads += 1
        rep.rr_seq = (
            max(r.rr_seq for r in pool) + 1
            if pool
            else await self._repo.next_rr_seq(session, lead.tenant_id)
        )
        self._repo.add(
            session,
            LeadAssignmentRow(
                id=new_id(),
                tenant_id=lead.tenant_id,
                lead_id=lead.id,
                customer_id=lead.customer_id,
                from_rep_id=previous or None,
                to_rep_id=rep.id,
                rule=rule,
                reason=reason,
                actor=actor,
                at=at,
            ),
        )
        self._repo.add(session, lead)
        event = await self._outbox.emit(
            session,
            "lead.assigned",
            tenant_id=lead.tenant_id,
            customer_id=lead.customer_id,
            payload=lead_assigned(
                lead.id,
                lead.campaign_id,
                rep_id=rep.id,
                team=rep.team,
                previous=previous,
                rule=rule,
                reason=reason,
            ),
            # Told below, in this transaction: the rep-notices consumer skips the event.
            headers=None if self._notices is None else TOLD,
        )
        if self._notices is not None:
            # A reassignment is news again: its own key (the event's id).
            told = Assigned(lead.tenant_id, lead.id, rep.id, event.id if previous else "", at)
            await self._notices.leads_assigned(session, [told])
        on_commit(session, partial(metrics.leads_assigned.add, 1, {"rule": rule}))
