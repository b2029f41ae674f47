"""Use cases of reps, assignment rules and leads. Takes the caller's session; never commits."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1 import conversion_events_pb2 as ev
from closedloop_conversion import metrics
from closedloop_conversion.common import new_id, now, optional, required
from closedloop_conversion.models import AssignmentRuleRow, LeadAssignmentRow, LeadRow, RepRow
from closedloop_conversion.sales import repository as repo
from closedloop_conversion.sales.policy import Candidate, Rule, choose, day_start, on_duty
from loopkit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from loopkit.events import Outbox
from loopkit.uow import on_commit

MAX_CAPACITY = 100_000
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
# Leads assigned per drain of the waiting queue; the rest wait for the next capacity change.
DRAIN_BATCH = 500


@dataclass(frozen=True)
class RepInput:
    wecom_user_id: str
    name: str
    team: str
    capacity: int
    working_hours: dict[str, Any] = field(default_factory=dict)
    regions: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class RepChanges:
    name: str | None = None
    team: str | None = None
    capacity: int | None = None
    working_hours: dict[str, Any] | None = None
    status: str | None = None
    regions: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None


@dataclass(frozen=True)
class CapturedLead:
    lead_id: str
    customer_id: str
    campaign_id: str
    channel_id: str
    owner_team: str
    region: str
    tags: tuple[str, ...]
    captured_at: datetime
    # The channel's most leads per rep per day (0 = no cap).
    daily_cap: int = 0


def validate_capacity(capacity: int) -> int:
    if not 0 <= capacity <= MAX_CAPACITY:
        raise InvalidArgument(f"must be between 0 and {MAX_CAPACITY}", field="capacity")
    return capacity


def validate_hours(hours: dict[str, Any]) -> dict[str, Any]:
    """{"weekdays": [1..7], "start": "HH:MM", "end": "HH:MM", "time_zone": IANA} or {}."""
    if not hours:
        return {}
    days = sorted(set(hours.get("weekdays") or []))
    if any(not 1 <= d <= 7 for d in days):
        raise InvalidArgument("weekdays are 1 (Monday) to 7", field="working_hours.weekdays")
    start, end = hours.get("start", ""), hours.get("end", "")
    for name, value in (("start", start), ("end", end)):
        if not _HHMM.match(value):
            raise InvalidArgument("must be HH:MM", field=f"working_hours.{name}")
    if start >= end:
        raise InvalidArgument("must be after start", field="working_hours.end")
    zone = hours.get("time_zone") or "Asia/Shanghai"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument("unknown time zone", field="working_hours.time_zone") from None
    return {"weekdays": days, "start": start, "end": end, "time_zone": zone}


def _labels(values: Sequence[str], field_name: str) -> list[str]:
    return list(dict.fromkeys(optional(v, field_name, max_len=64) for v in values if v.strip()))


def _candidate(rep: RepRow, at: datetime, capped: bool = False) -> Candidate:
    return Candidate(
        rep_id=rep.id,
        capacity=rep.capacity,
        open_leads=rep.open_leads,
        rr_seq=rep.rr_seq,
        active=rep.status == "active",
        regions=tuple(rep.regions),
        tags=tuple(rep.tags),
        on_duty=on_duty(rep.working_hours, at),
        capped=capped,
    )


class SalesService:
    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    # --- reps --------------------------------------------------------------------------------

    async def create_rep(self, session: AsyncSession, tenant: str, data: RepInput) -> RepRow:
        wecom_user_id = required(data.wecom_user_id, "wecom_user_id", max_len=128)
        if await repo.rep_by_wecom(session, tenant, wecom_user_id) is not None:
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
            regions=_labels(data.regions, "regions"),
            tags=_labels(data.tags, "tags"),
            status="active",
            open_leads=0,
            rr_seq=0,
            created_at=at,
            updated_at=at,
            departed_at=None,
        )
        session.add(rep)
        await session.flush()
        await self.assign_waiting(session, tenant)
        return rep

    async def get_rep(self, session: AsyncSession, tenant: str, rep_id: str) -> RepRow:
        rep = await repo.rep(session, tenant, rep_id)
        if rep is None:
            raise NotFound("no such rep", field="rep_id")
        return rep

    async def update_rep(
        self, session: AsyncSession, tenant: str, rep_id: str, changes: RepChanges
    ) -> RepRow:
        rep = await repo.rep(session, tenant, rep_id, lock=True)
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
            rep.regions = _labels(changes.regions, "regions")
        if changes.tags is not None:
            rep.tags = _labels(changes.tags, "tags")
        if changes.status is not None and changes.status != rep.status:
            rep.status = changes.status
            rep.departed_at = now() if changes.status == "departed" else None
        rep.updated_at = now()
        await session.flush()
        # A departed rep keeps their open leads until TransferCustomers moves them with the
        # customers (or sends the ones without a friendship back to the queue).
        await self.assign_waiting(session, tenant)
        return rep

    async def list_reps(
        self, session: AsyncSession, tenant: str, *, team: str = "", status: str = ""
    ) -> Sequence[RepRow]:
        return await repo.reps(session, tenant, team=team, status=status)

    # --- rules -------------------------------------------------------------------------------

    async def set_rule(
        self, session: AsyncSession, tenant: str, campaign_id: str, kind: Rule, team: str
    ) -> AssignmentRuleRow:
        campaign = required(campaign_id, "rule.campaign_id", max_len=64)
        row = await repo.rule(session, tenant, campaign)
        if row is None:
            row = AssignmentRuleRow(tenant_id=tenant, campaign_id=campaign)
            session.add(row)
        row.kind = str(kind)
        row.team = optional(team, "rule.team", max_len=128)
        row.updated_at = now()
        await session.flush()
        return row

    # --- leads -------------------------------------------------------------------------------

    async def capture_lead(
        self, session: AsyncSession, tenant: str, captured: CapturedLead
    ) -> LeadRow:
        """A lead from acquisition: stored once, assigned by its campaign's rule or left waiting."""
        existing = await repo.lead_any_tenant(session, captured.lead_id)
        if existing is not None:
            return existing  # the same lead published again: already handled
        lead = LeadRow(
            id=captured.lead_id,
            tenant_id=tenant,
            customer_id=captured.customer_id,
            campaign_id=captured.campaign_id,
            channel_id=captured.channel_id,
            team=captured.owner_team,
            region=captured.region,
            tags=list(captured.tags),
            status="unassigned",
            rep_id=None,
            rule="",
            captured_at=captured.captured_at,
            assigned_at=None,
            first_follow_up_at=None,
            closed_at=None,
            daily_cap=captured.daily_cap,
        )
        # Added after the choice: the lead, the rep's turn, the history and the event then go
        # to the database in one flush.
        if not await self._assign_by_rule(session, lead, actor="lead.captured"):
            session.add(lead)
        return lead

    async def get_lead(self, session: AsyncSession, tenant: str, lead_id: str) -> LeadRow:
        lead = await repo.lead(session, tenant, lead_id)
        if lead is None:
            raise NotFound("no such lead", field="lead_id")
        return lead

    async def list_leads(
        self,
        session: AsyncSession,
        tenant: str,
        *,
        rep_id: str = "",
        status: str = "",
        customer_id: str = "",
    ) -> Sequence[LeadRow]:
        return await repo.leads(
            session, tenant, rep_id=rep_id, status=status, customer_id=customer_id
        )

    async def assign_lead(
        self, session: AsyncSession, tenant: str, lead_id: str, rep_id: str, actor: str
    ) -> LeadRow:
        lead = await repo.lead(session, tenant, lead_id, lock=True)
        if lead is None:
            raise NotFound("no such lead", field="lead_id")
        if lead.status != "unassigned":
            raise FailedPrecondition(
                f"lead is {lead.status}; use ReassignLead to move it", field="lead_id"
            )
        if not rep_id:
            if not await self._assign_by_rule(session, lead, actor=actor or "manual"):
                raise FailedPrecondition("no available rep: the lead keeps waiting", field="rep_id")
            return lead
        rep = await self._available_rep(session, tenant, rep_id)
        await self._give(session, lead, rep, rule="manual", reason="assigned by hand", actor=actor)
        return lead

    async def reassign_lead(
        self,
        session: AsyncSession,
        tenant: str,
        lead_id: str,
        *,
        rep_id: str,
        reason: str,
        actor: str,
    ) -> LeadRow:
        lead = await repo.lead(session, tenant, lead_id, lock=True)
        if lead is None:
            raise NotFound("no such lead", field="lead_id")
        if lead.status in ("won", "lost"):
            raise FailedPrecondition(f"lead is closed ({lead.status})", field="lead_id")
        required(rep_id, "rep_id", max_len=26)
        if lead.rep_id == rep_id:
            return lead
        rep = await self._available_rep(session, tenant, rep_id)
        await self._release(session, lead)
        why = optional(reason, "reason", max_len=500)
        await self._give(session, lead, rep, rule="manual", reason=why, actor=actor)
        await self.assign_waiting(session, tenant)
        return lead

    async def close_lead(
        self, session: AsyncSession, tenant: str, lead_id: str, outcome: str
    ) -> LeadRow:
        if outcome not in ("won", "lost"):
            raise InvalidArgument("must be won or lost", field="outcome")
        lead = await repo.lead(session, tenant, lead_id, lock=True)
        if lead is None:
            raise NotFound("no such lead", field="lead_id")
        if lead.status == outcome:
            return lead
        if lead.status in ("won", "lost"):
            raise FailedPrecondition(f"lead is already {lead.status}", field="outcome")
        await self._release(session, lead)
        lead.status = outcome
        lead.closed_at = now()
        await session.flush()
        await self.assign_waiting(session, tenant)
        return lead

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
        leads = await repo.open_leads_of(session, tenant, customer_id, from_rep_id)
        if not leads:
            return 0
        to_rep = await repo.rep(session, tenant, to_rep_id, lock=True)
        if to_rep is None:
            raise NotFound("no such rep", field="to_rep_id")
        for lead in leads:
            await self._release(session, lead)
            await self._give(session, lead, to_rep, rule="transfer", reason=reason, actor=actor)
        return len(leads)

    async def requeue_leads(
        self, session: AsyncSession, tenant: str, rep_id: str, keep_customers: set[str]
    ) -> int:
        """Send a departed rep's open leads, except those of `keep_customers`, back to the queue
        (they are assigned by rule at once when someone has room)."""
        requeued = 0
        for lead in await repo.leads(session, tenant, rep_id=rep_id, status="assigned"):
            if lead.customer_id in keep_customers:
                continue
            await self._release(session, lead)
            lead.status = "unassigned"
            lead.rep_id = None
            requeued += 1
        if requeued:
            await session.flush()
            await self.assign_waiting(session, tenant)
        return requeued

    async def assign_waiting(self, session: AsyncSession, tenant: str) -> int:
        """Give waiting leads to reps that have room now (a rep joined, or capacity freed)."""
        assigned = 0
        # Teams found with nobody available: they stay so for the rest of this drain.
        full_teams: set[str] = set()
        for lead in await repo.waiting_leads(session, tenant, DRAIN_BATCH):
            if await self._assign_by_rule(session, lead, actor="queue", full_teams=full_teams):
                assigned += 1
        return assigned

    async def note_follow_up(
        self, session: AsyncSession, tenant: str, customer_id: str, rep_id: str, at: datetime
    ) -> str | None:
        """The rep followed the customer up: stamps the first response on their open lead."""
        leads = await repo.open_leads_of(session, tenant, customer_id, rep_id)
        for lead in leads:
            if lead.first_follow_up_at is None:
                lead.first_follow_up_at = at
        return leads[-1].id if leads else None

    # --- internals ---------------------------------------------------------------------------

    async def _available_rep(self, session: AsyncSession, tenant: str, rep_id: str) -> RepRow:
        rep = await repo.rep(session, tenant, rep_id, lock=True)
        if rep is None:
            raise NotFound("no such rep", field="rep_id")
        if rep.status != "active":
            raise FailedPrecondition("the rep has departed", field="rep_id")
        if rep.open_leads >= rep.capacity:
            raise FailedPrecondition("the rep is at capacity", field="rep_id")
        return rep

    async def _assign_by_rule(
        self,
        session: AsyncSession,
        lead: LeadRow,
        *,
        actor: str,
        full_teams: set[str] | None = None,
    ) -> bool:
        tenant = lead.tenant_id
        rule_row = await repo.rule(session, tenant, lead.campaign_id) if lead.campaign_id else None
        rule = Rule(rule_row.kind) if rule_row is not None else Rule.ROUND_ROBIN
        team = (rule_row.team if rule_row is not None else "") or lead.team
        if full_teams is not None and team in full_teams:
            return False
        owners: list[str] = []
        if rule is Rule.STICKY:
            owners = await repo.owner_rep_ids(session, tenant, lead.customer_id)
        pool = await repo.lock_pool(session, tenant, team, owners)
        if team and not any(r.team == team for r in pool):
            team = ""  # nobody works in that team: any rep of the tenant
            pool = await repo.lock_pool(session, tenant, team, owners)
        at = now()
        capped = await self._capped(session, lead, pool, at)
        choice = choose(
            rule,
            [_candidate(r, at, r.id in capped) for r in pool],
            region=lead.region,
            tags=lead.tags,
            sticky_rep_ids=owners,
        )
        if choice is None:
            # A cap is per channel: the team may still have room for other channels' leads.
            if full_teams is not None and not owners and not capped:
                full_teams.add((rule_row.team if rule_row is not None else "") or lead.team)
                full_teams.add(team)
            return False  # waits as unassigned until a rep has room
        rep = next(r for r in pool if r.id == choice.rep_id)
        reason = f"campaign rule {rule}" if rule_row is not None else "owner team round-robin"
        await self._give(
            session, lead, rep, rule=choice.rule, reason=reason, actor=actor, pool=pool
        )
        return True

    @staticmethod
    async def _capped(
        session: AsyncSession, lead: LeadRow, pool: Sequence[RepRow], at: datetime
    ) -> set[str]:
        """The reps of `pool` already given the lead's channel's daily cap of leads today."""
        if lead.daily_cap <= 0 or not lead.channel_id:
            return set()
        given = await repo.channel_leads_since(
            session, lead.tenant_id, lead.channel_id, [r.id for r in pool], day_start(at)
        )
        return {rep_id for rep_id, n in given.items() if n >= lead.daily_cap}

    async def _release(self, session: AsyncSession, lead: LeadRow) -> None:
        if lead.status == "assigned" and lead.rep_id:
            old = await repo.rep(session, lead.tenant_id, lead.rep_id, lock=True)
            if old is not None:
                old.open_leads = max(0, old.open_leads - 1)

    async def _give(
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
            else await repo.next_rr_seq(session, lead.tenant_id)
        )
        session.add(
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
            )
        )
        session.add(lead)
        await self._outbox.emit(
            session,
            "lead.assigned",
            tenant_id=lead.tenant_id,
            customer_id=lead.customer_id,
            payload=ev.LeadAssigned(
                lead_id=lead.id,
                campaign_id=lead.campaign_id,
                rep_id=rep.id,
                previous_rep_id=previous,
                team_id=rep.team,
                rule=rule,
                reason=reason,
            ),
        )
        on_commit(session, partial(metrics.leads_assigned.add, 1, {"rule": rule}))
