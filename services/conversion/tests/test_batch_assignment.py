"""A batch of captured leads is assigned exactly as the per-lead policy (`Assigner.by_rule`, which
the queue and AssignLead use) assigns the same leads one after the other: same reps, rules,
reasons, history, turns, loads, daily caps and `lead.assigned` events, on SQLite and PostgreSQL.

Two tenants get the same reps, rules, friendships and history (ids differing only by a prefix of
the same length, so every tie breaks alike); one captures a mixed batch one lead at a time, the
other all at once, and what each wrote is compared.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.conversion.v1 import conversion_pb2 as pb
from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.events.v1 import conversion_events_pb2 as ev
from closedloop_conversion.common import now
from closedloop_conversion.models import (
    AssignmentRuleRow,
    LeadAssignmentRow,
    LeadRow,
    OwnershipRow,
    RepRow,
)
from closedloop_conversion.sales.assignment import Assigner
from closedloop_conversion.sales.inputs import CapturedLead
from closedloop_conversion.sales.repository import SalesRepository
from closedloop_conversion.sales.service import SalesService
from conversion_helpers import lead_envelope, make_rep, publish
from loopkit.deadletters import DeadLetter, list_dead_letters
from loopkit.events import Outbox, decode_envelope, unpack
from loopkit_dev.testing import RunningService, eventually

OFF_DUTY = {"weekdays": [], "start": "09:00", "end": "18:00", "time_zone": "UTC"}
# rep: team, capacity, regions, tags, rr_seq, status, working hours
REPS: dict[str, tuple[str, int, list[str], list[str], int, str, dict[str, Any]]] = {
    "r1": ("sales", 3, ["north"], ["vip"], 0, "active", {}),
    "r2": ("sales", 10, ["south"], [], 1, "active", {}),
    "r3": ("sales", 2, ["north"], [], 0, "active", OFF_DUTY),
    "r4": ("support", 5, [], ["vip", "cn"], 2, "active", {}),
    "r5": ("sales", 10, ["south"], ["vip"], 0, "departed", {}),
    "r6": ("", 4, [], [], 5, "active", {}),
}
# campaign: rule kind, team
RULES = {
    "ll": ("least_loaded", "sales"),
    "reg": ("region", ""),
    "tag": ("tag", "support"),
    "st": ("sticky", "sales"),
    "ghost": ("round_robin", "nobody"),
}


def _leads(p: str) -> list[CapturedLead]:
    """A mixed batch: every rule, fallbacks, two capped channels, a full rep, repeats."""
    at = now() - timedelta(minutes=5)
    spec: list[tuple[str, str, str, str, str, tuple[str, ...], int]] = [
        # lead, customer, campaign, channel, region, tags, daily cap
        ("l01", "c1", "st", "", "", (), 0),  # sticky: its owner r2
        ("l02", "c2", "st", "", "", (), 0),  # sticky: owner r1 (of another team? no: sales)
        ("l03", "c3", "none", "cap1", "", (), 1),  # r2 had its cap1 lead today
        ("l04", "c4", "none", "cap1", "", (), 1),
        ("l05", "c5", "none", "cap1", "", (), 1),
        ("l06", "c6", "none", "cap1", "", (), 1),  # everyone in sales at cap: waits
        ("l07", "c7", "reg", "", "north", (), 0),
        ("l08", "c8", "reg", "", "South", (), 0),
        ("l09", "c9", "reg", "", "west", (), 0),  # no rep there: round-robin
        ("l10", "c10", "tag", "", "", ("VIP",), 0),
        ("l11", "c11", "tag", "", "", ("nope",), 0),
        ("l12", "c12", "ll", "cap2", "", (), 2),
        ("l13", "c13", "ll", "cap2", "", (), 2),
        ("l14", "c14", "ll", "cap2", "", (), 2),
        ("l15", "c15", "ghost", "", "", (), 0),  # nobody in its team: any rep
        ("l16", "c16", "none", "", "", (), 0),
        ("pre", "c0", "none", "cap1", "", (), 1),  # stored already: skipped
        ("l17", "c17", "st", "cap2", "", (), 2),
        ("l16", "c16", "none", "", "", (), 0),  # the same lead again in the batch
        ("l18", "c1", "st", "", "", (), 0),  # sticky again
        ("l19", "c19", "none", "", "", (), 0),
        ("l20", "c20", "ll", "", "", (), 0),
        ("l21", "c21", "none", "cap2", "", (), 0),  # uncapped lead of a capped channel
        ("l22", "c22", "ll", "cap2", "", (), 2),
        ("l23", "c23", "none", "", "", (), 0),
        ("l24", "c24", "none", "", "", (), 0),
        ("l25", "c25", "none", "", "", (), 0),
        ("l26", "c26", "none", "", "", (), 0),
        ("l27", "c27", "none", "", "", (), 0),
        ("l28", "c28", "none", "", "", (), 0),
    ]
    return [
        CapturedLead(
            lead_id=f"{p}{lead}",
            customer_id=f"{p}{customer}",
            campaign_id=campaign,
            channel_id=channel,
            owner_team="sales",
            region=region,
            tags=tags,
            captured_at=at,
            daily_cap=cap,
        )
        for lead, customer, campaign, channel, region, tags, cap in spec
    ]


async def _seed(session: AsyncSession, tenant: str, p: str) -> None:
    at = now()
    for key, (team, capacity, regions, tags, rr_seq, status, hours) in REPS.items():
        session.add(
            RepRow(
                id=f"{p}{key}",
                tenant_id=tenant,
                wecom_user_id=key,
                name=key,
                team=team,
                capacity=capacity,
                working_hours=hours,
                regions=regions,
                tags=tags,
                status=status,
                open_leads=1 if key == "r2" else 0,
                rr_seq=rr_seq,
                created_at=at,
                updated_at=at,
                departed_at=None,
            )
        )
    for campaign, (kind, team) in RULES.items():
        session.add(
            AssignmentRuleRow(
                tenant_id=tenant, campaign_id=campaign, kind=kind, team=team, updated_at=at
            )
        )
    friendships = [("c1", "r5", 1), ("c1", "r2", 2), ("c2", "r1", 1), ("c17", "r4", 1)]
    for n, (customer, rep, days_ago) in enumerate(friendships):
        session.add(
            OwnershipRow(
                id=f"{p}o{n}",
                tenant_id=tenant,
                corp_id="corp",
                rep_id=f"{p}{rep}",
                customer_id=f"{p}{customer}",
                external_userid=f"wm-{n}",
                channel_id="",
                state="",
                status="active",
                remark="",
                started_at=at - timedelta(days=days_ago),
                ended_at=None,
                end_reason="",
                welcome_status="",
                welcome_latency_ms=None,
            )
        )
    # r2 was given a lead of channel cap1 earlier today.
    session.add(
        LeadRow(
            id=f"{p}pre",
            tenant_id=tenant,
            customer_id=f"{p}c0",
            campaign_id="none",
            channel_id="cap1",
            team="sales",
            region="",
            tags=[],
            status="assigned",
            rep_id=f"{p}r2",
            rule="round_robin",
            captured_at=at,
            assigned_at=at,
            first_follow_up_at=None,
            closed_at=None,
            daily_cap=1,
        )
    )
    session.add(
        LeadAssignmentRow(
            id=f"{p}h0",
            tenant_id=tenant,
            lead_id=f"{p}pre",
            customer_id=f"{p}c0",
            from_rep_id=None,
            to_rep_id=f"{p}r2",
            rule="round_robin",
            reason="owner team round-robin",
            actor="lead.captured",
            at=at,
        )
    )


async def _one_by_one(
    session: AsyncSession, outbox: Outbox, tenant: str, leads: list[CapturedLead]
) -> None:
    """What capturing did per message before batches: stored once, then `by_rule`."""
    assigner = Assigner(outbox, SalesRepository())
    for captured in leads:
        if await session.get(LeadRow, captured.lead_id) is not None:
            continue
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
        if not await assigner.by_rule(session, lead, actor="lead.captured"):
            session.add(lead)
        await session.flush()


async def _outcome(session: AsyncSession, tenant: str, p: str, outbox_table: Any) -> dict[str, Any]:
    """What the capture left, with the tenant's prefix taken off every id."""

    def bare(value: str | None) -> str:
        return (value or "").removeprefix(p)

    leads = (await session.execute(select(LeadRow).where(LeadRow.tenant_id == tenant))).scalars()
    history = (
        await session.execute(
            select(LeadAssignmentRow).where(LeadAssignmentRow.tenant_id == tenant)
        )
    ).scalars()
    reps = (await session.execute(select(RepRow).where(RepRow.tenant_id == tenant))).scalars()
    events = []
    for data in (await session.execute(select(outbox_table.c.data))).scalars():
        env = decode_envelope(data)
        if env.tenant_id == tenant and env.type == "lead.assigned":
            e = unpack(env, ev.LeadAssigned)
            events.append(
                (bare(e.lead_id), bare(e.rep_id), e.team_id, e.rule, e.reason, e.campaign_id)
            )
    return {
        "leads": {
            bare(lead.id): (lead.status, bare(lead.rep_id), lead.rule, lead.daily_cap)
            for lead in leads
        },
        "history": sorted(
            (bare(h.lead_id), bare(h.to_rep_id), h.rule, h.reason, h.actor) for h in history
        ),
        "reps": {bare(r.id): (r.open_leads, r.rr_seq) for r in reps},
        "events": sorted(events),
    }


@contextmanager
def _statements(conversion: RunningService, mine: Any) -> Iterator[list[str]]:
    """The statements sent on connection `mine` (not the relay's or the consumers' beside it)."""
    seen: list[str] = []
    engine = conversion.runtime.engine.sync_engine

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if conn is mine:
            seen.append(" ".join(statement.split()[:3]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_a_batch_is_assigned_as_one_lead_after_the_other_would_be(
    conversion: RunningService, tenant: str
) -> None:
    runtime = conversion.runtime
    uid = uuid.uuid4().hex[:8]
    one, batch = (f"{tenant}-one", f"{uid}a-"), (f"{tenant}-all", f"{uid}b-")
    async with runtime.sessions.begin() as session:
        for t, p in (one, batch):
            await _seed(session, t, p)

    async with runtime.sessions.begin() as session:
        await _one_by_one(session, runtime.outbox, one[0], _leads(one[1]))
        expected = await _outcome(session, one[0], one[1], runtime.outbox.tables.outbox)

    sales = SalesService(runtime.outbox)
    async with runtime.sessions.begin() as session:
        mine = (await session.connection()).sync_connection
        with _statements(conversion, mine) as statements:
            await sales.capture_leads(session, [(batch[0], c) for c in _leads(batch[1])])
        got = await _outcome(session, batch[0], batch[1], runtime.outbox.tables.outbox)

    assert got == expected
    # The batch is worth comparing: every rule, waiting leads, the caps and the repeats at work.
    rules = {rule for _, _, rule, _ in got["leads"].values()}
    assert {"sticky", "region", "tag", "least_loaded", "round_robin"} <= rules
    waiting = [lead for lead, (status, *_) in got["leads"].items() if status == "unassigned"]
    assert "l06" in waiting
    assert got["leads"]["l01"][1] == "r2"  # the active owner, not the departed one
    assert len(got["leads"]) == 29  # 28 new (one twice in the batch) and the one stored before
    # Set-based: a handful of statements for the whole batch, not several per lead.
    assert len(statements) <= 10, statements


async def test_a_bad_lead_among_good_ones_is_dead_lettered_alone(
    stub: Any, tenant: str, nats_client: Any
) -> None:
    """Published back to back they usually share a fetched batch: the batch fails on the bad one,
    the kit captures them one by one, and only the bad one goes to the dead letters."""
    rep = await make_rep(stub, tenant, "only", capacity=10)
    good = [lead_envelope(tenant) for _ in range(3)]
    bad = lead_envelope(tenant, lead_id="x" * 65)  # longer than a lead id may be
    for env in (good[0], bad, good[1], good[2]):
        await publish(nats_client, env)

    async def letter() -> DeadLetter | None:
        found = await list_dead_letters(nats_client.jetstream())
        return next((d for d in found if d.event_id == bad.id), None)

    await eventually(letter)
    dead = await letter()
    assert dead is not None
    assert dead.delivered == "1"  # a domain error: never retried
    assert dead.error.startswith("InvalidArgument")
    for env in good:
        lead_id = unpack(env, acq.LeadCaptured).lead_id

        async def assigned(lead_id: str = lead_id) -> bool:
            answer = await stub.ListLeads(pb.ListLeadsRequest(tenant_id=tenant))
            return any(
                lead.lead_id == lead_id and lead.rep_id == rep.rep_id for lead in answer.leads
            )

        await eventually(assigned)
