"""Capturing a batch of leads at once: the same choices as `Assigner.by_rule` one lead after the
other, made in Python from one read of each tenant's rep pool, and written with multi-row
statements.

Per tenant in the batch: the leads already stored, the campaigns' rules, the sticky customers'
owners and the channels' leads per rep today are one query each; every active rep of the tenant is
locked once (in id order, like `lock_pool`); then each lead, in stream order, is given to the rep
`choose` picks from its pool, and the pool's turns, loads and caps move in memory exactly as the
per-lead path moves them in the database. The leads, their history, the reps' turns and the
`lead.assigned` events then go out in one statement per table. It never commits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_conversion import metrics
from closedloop_conversion.common import new_id, now
from closedloop_conversion.notices.service import TOLD, Assigned
from closedloop_conversion.sales.assignment import (
    AssignmentNotices,
    candidate,
    lead_assigned,
    rule_of,
    rule_reason,
)
from closedloop_conversion.sales.inputs import CapturedLead
from closedloop_conversion.sales.policy import Rule, choose, day_start, on_duty
from closedloop_conversion.sales.repository import SalesRepository
from loopkit import tracing
from loopkit.events import Outbox
from loopkit.uow import on_commit


@dataclass
class PoolRep:
    """A locked rep as the batch sees it: its load and turn move as leads are given."""

    id: str
    team: str
    capacity: int
    open_leads: int
    rr_seq: int
    status: str
    regions: list[str]
    tags: list[str]
    working_hours: dict[str, Any]
    on_duty: bool
    moved: bool = False


@dataclass
class _Written:
    """What a batch writes, gathered before the statements go out."""

    leads: list[dict[str, Any]]
    assignments: list[dict[str, Any]]
    events: list[Any]
    rules: Counter[str]
    told: list[Assigned]
    # The locked reps' rows by id (what the notices need of a rep), every tenant's.
    reps: dict[str, Any]


class BatchCapture:
    def __init__(
        self, outbox: Outbox, repo: SalesRepository, notices: AssignmentNotices | None = None
    ) -> None:
        self._outbox = outbox
        self._repo = repo
        self._notices = notices

    async def capture(
        self, session: AsyncSession, leads: Sequence[tuple[str, CapturedLead]]
    ) -> None:
        """Store and assign `(tenant, lead)`s in their order; a lead id seen before (stored, or
        earlier in the batch) is skipped, as `capture_lead` skips it."""
        stored = await self._repo.existing_lead_ids(session, {c.lead_id for _, c in leads})
        by_tenant: dict[str, list[CapturedLead]] = {}
        for tenant, captured in leads:
            if captured.lead_id in stored:
                continue
            stored.add(captured.lead_id)
            by_tenant.setdefault(tenant, []).append(captured)
        written = _Written([], [], [], Counter(), [], {})
        for tenant, captured_leads in by_tenant.items():
            await self._tenant(session, tenant, captured_leads, written)
        await self._repo.insert_leads(session, written.leads, written.assignments)
        if self._notices is None:
            await self._outbox.add_many(session, written.events)
        else:  # the events say so, and the rep-notices consumer skips them
            await self._outbox.add_many(session, written.events, TOLD)
            # The leads are new in this transaction and their reps are the locked rows.
            await self._notices.leads_assigned(
                session, written.told, reps=written.reps, new_leads=True
            )
        for rule, n in written.rules.items():
            on_commit(session, partial(metrics.leads_assigned.add, n, {"rule": rule}))

    async def _tenant(
        self,
        session: AsyncSession,
        tenant: str,
        leads: Sequence[CapturedLead],
        written: _Written,
    ) -> None:
        rules = await self._repo.rules_of(session, tenant, {c.campaign_id for c in leads} - {""})
        sticky = {
            c.customer_id
            for c in leads
            if c.customer_id and rule_of(rules.get(c.campaign_id), c.owner_team)[0] is Rule.STICKY
        }
        owners = await self._repo.owners_of(session, tenant, sticky)
        at = now()
        locked = await self._repo.lock_active_reps(session, tenant)
        written.reps.update((r.id, r) for r in locked)
        active = [
            PoolRep(
                id=r.id,
                team=r.team,
                capacity=r.capacity,
                open_leads=r.open_leads,
                rr_seq=r.rr_seq,
                status=r.status,
                regions=list(r.regions),
                tags=list(r.tags),
                working_hours=dict(r.working_hours or {}),
                on_duty=on_duty(r.working_hours, at),
            )
            for r in locked
        ]
        capped_channels = {c.channel_id for c in leads if c.daily_cap > 0 and c.channel_id}
        given = Counter(
            await self._repo.channel_leads_by_rep(session, tenant, capped_channels, day_start(at))
        )
        # Each rep as a candidate, remade only when the rep is given a lead (the hot loop).
        as_candidate = {r.id: candidate(r, at, duty=r.on_duty) for r in active}
        by_id = {r.id: r for r in active}
        pools: dict[str, list[PoolRep]] = {}  # a team's pool (no owners), made once per batch
        # Every lead.assigned of the batch: one time and one trace context, read once.
        occurred, carrier = Timestamp(), tracing.current_context_headers()
        occurred.FromDatetime(at)
        for captured in leads:
            row = _lead_row(tenant, captured)
            written.leads.append(row)
            rule_row = rules.get(captured.campaign_id) if captured.campaign_id else None
            rule, team = rule_of(rule_row, captured.owner_team)
            lead_owners = owners.get(captured.customer_id, []) if rule is Rule.STICKY else []
            if lead_owners:
                pool = _team_pool(active, team, lead_owners)
            elif team in pools:
                pool = pools[team]
            else:
                pool = pools[team] = _team_pool(active, team, ())
            if captured.daily_cap > 0 and captured.channel_id:
                capped = {
                    r.id for r in pool if given[(captured.channel_id, r.id)] >= captured.daily_cap
                }
                candidates = [
                    replace(as_candidate[r.id], capped=True)
                    if r.id in capped
                    else as_candidate[r.id]
                    for r in pool
                ]
            else:
                candidates = [as_candidate[r.id] for r in pool]
            choice = choose(
                rule,
                candidates,
                region=captured.region,
                tags=captured.tags,
                sticky_rep_ids=lead_owners,
            )
            if choice is None:
                continue  # waits as unassigned until a rep has room
            rep = by_id[choice.rep_id]
            reason = rule_reason(rule_row, rule)
            row.update(status="assigned", rep_id=rep.id, rule=choice.rule, assigned_at=at)
            turn = max(r.rr_seq for r in pool) + 1
            rep.open_leads += 1
            rep.rr_seq = turn
            rep.moved = True
            as_candidate[rep.id] = candidate(rep, at, duty=rep.on_duty)
            if captured.channel_id in capped_channels:
                given[(captured.channel_id, rep.id)] += 1
            written.assignments.append(
                {
                    "id": new_id(),
                    "tenant_id": tenant,
                    "lead_id": captured.lead_id,
                    "customer_id": captured.customer_id,
                    "from_rep_id": None,
                    "to_rep_id": rep.id,
                    "rule": choice.rule,
                    "reason": reason,
                    "actor": "lead.captured",
                    "at": at,
                }
            )
            written.events.append(
                self._outbox.envelope(
                    "lead.assigned",
                    tenant_id=tenant,
                    customer_id=captured.customer_id,
                    payload=lead_assigned(
                        captured.lead_id,
                        captured.campaign_id,
                        rep_id=rep.id,
                        team=rep.team,
                        previous="",
                        rule=choice.rule,
                        reason=reason,
                    ),
                    occurred_at=occurred,
                    carrier=carrier,
                )
            )
            written.rules[choice.rule] += 1
            written.told.append(Assigned(tenant, captured.lead_id, rep.id, "", at))
        await self._repo.set_turns(
            session,
            [
                {"rep_id": r.id, "to_open_leads": r.open_leads, "to_rr_seq": r.rr_seq}
                for r in active
                if r.moved
            ],
        )


def _pool(active: list[PoolRep], team: str, owners: Sequence[str]) -> list[PoolRep]:
    """What `lock_pool(tenant, team, owners)` would lock, from the tenant's active reps (the
    list itself when it is all of them: callers only read it)."""
    if not team:
        return active
    return [r for r in active if r.team == team or r.id in owners]


def _team_pool(active: list[PoolRep], team: str, owners: Sequence[str]) -> list[PoolRep]:
    """The pool a lead of `team` is chosen from: any rep when nobody works in that team."""
    pool = _pool(active, team, owners)
    if team and not any(r.team == team for r in pool):
        pool = _pool(active, "", owners)
    return pool


def _lead_row(tenant: str, captured: CapturedLead) -> dict[str, Any]:
    return {
        "id": captured.lead_id,
        "tenant_id": tenant,
        "customer_id": captured.customer_id,
        "campaign_id": captured.campaign_id,
        "channel_id": captured.channel_id,
        "team": captured.owner_team,
        "region": captured.region,
        "tags": list(captured.tags),
        "status": "unassigned",
        "rep_id": None,
        "rule": "",
        "captured_at": captured.captured_at,
        "assigned_at": None,
        "first_follow_up_at": None,
        "closed_at": None,
        "daily_cap": captured.daily_cap,
    }
