"""A rep is told of a lead in the transaction that gives it to them: the batch capture and the
per-lead path (here a reassignment) store the rep notice beside the lead, its history and its
`lead.assigned` row, under the keys the gateway de-duplicates on (the rep-notices consumer of
conversion's own `lead.assigned` is left a safety net for events that came without a notice)."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest
from nats.aio.client import Client
from sqlalchemy import event, func, select

from closedloop_conversion.common import now
from closedloop_conversion.models import LeadRow, RepNoticeRow
from closedloop_conversion.notices.service import TOLD_HEADER, NoticeService
from closedloop_conversion.sales.inputs import CapturedLead
from closedloop_conversion.sales.service import SalesService
from conversion_helpers import make_rep
from loopkit.bulk import COPY_FROM
from loopkit.events import decode_envelope
from loopkit_dev.testing import RunningService, eventually


def _lead(lead_id: str) -> CapturedLead:
    return CapturedLead(lead_id, "", "", "", "sales", "", (), now())


async def test_notices_are_stored_with_the_assignment(
    conversion: RunningService, stub: Any, tenant: str
) -> None:
    runtime = conversion.runtime
    reps = [await make_rep(stub, tenant, f"told-{i}") for i in range(2)]
    leads = [f"lead-told-{uuid.uuid4().hex[:12]}" for _ in range(3)]
    notices = NoticeService(runtime.settings.account_registry(), gateway=False)
    sales = SalesService(runtime.outbox, notices)
    outbox = runtime.outbox.tables.outbox
    async with runtime.sessions() as session, session.begin():
        await sales.capture_leads(session, [(tenant, _lead(lead_id)) for lead_id in leads])
        # Not committed yet: the notices are in the same transaction as the leads.
        query = select(LeadRow.id, LeadRow.rep_id).where(LeadRow.id.in_(leads))
        given = {lead_id: rep_id for lead_id, rep_id in (await session.execute(query)).all()}
        told = (
            await session.execute(
                select(
                    RepNoticeRow.idempotency_key, RepNoticeRow.rep_id, RepNoticeRow.lead_id
                ).where(RepNoticeRow.tenant_id == tenant)
            )
        ).all()
        assert sorted(told) == sorted((f"assigned:{i}", given[i], i) for i in leads)

        lead = leads[0]
        other = next(r.rep_id for r in reps if r.rep_id != given[lead])
        before = {row.id for row in (await session.execute(select(outbox.c.id))).all()}
        await sales.reassign_lead(session, tenant, lead, rep_id=other, reason="test", actor="test")
        [event_id] = [
            row.id
            for row in (await session.execute(select(outbox.c.id, outbox.c.data))).all()
            if row.id not in before and decode_envelope(row.data).type == "lead.assigned"
        ]
        again = (
            await session.execute(
                select(RepNoticeRow.idempotency_key, RepNoticeRow.rep_id).where(
                    RepNoticeRow.tenant_id == tenant, RepNoticeRow.lead_id == lead
                )
            )
        ).all()
        assert sorted(again) == sorted(
            [(f"assigned:{lead}", given[lead]), (f"assigned:{lead}:{event_id}", other)]
        )
        await session.rollback()


async def test_the_safety_net_skips_assignments_told_in_their_transaction(
    conversion: RunningService, stub: Any, tenant: str, nats_client: Client
) -> None:
    """Every `lead.assigned` this release writes says its notices were told
    (`Closedloop-Notice: told`), so the rep-notices consumer acks it unopened: no inbox row and
    no query for it. (An event without the header still tells its rep: test_gateway.py.)"""
    runtime = conversion.runtime
    await make_rep(stub, tenant, "told-skip")
    leads = [f"lead-skip-{uuid.uuid4().hex[:12]}" for _ in range(3)]
    notices = NoticeService(runtime.settings.account_registry(), gateway=False)
    sales = SalesService(runtime.outbox, notices)
    async with runtime.sessions() as session, session.begin():
        await sales.capture_leads(session, [(tenant, _lead(lead_id)) for lead_id in leads])
    runtime.wake_relay()
    outbox, inbox = runtime.outbox.tables.outbox, runtime.outbox.tables.inbox
    async with runtime.sessions() as session:
        rows = (await session.execute(select(outbox.c.id, outbox.c.data, outbox.c.headers))).all()
    events = {
        row.id: row.headers
        for row in rows
        if (env := decode_envelope(row.data)).type == "lead.assigned" and env.tenant_id == tenant
    }
    assert len(events) == len(leads)
    assert all(headers.get(TOLD_HEADER[0]) == TOLD_HEADER[1] for headers in events.values())
    js = nats_client.jetstream()
    durable = "conversion-rep-notices"

    async def published_and_consumed() -> bool:
        async with runtime.sessions() as session:
            unsent = await session.scalar(
                select(func.count()).where(
                    outbox.c.id.in_(list(events)), outbox.c.published_at.is_(None)
                )
            )
        info = await js.consumer_info("CONVERSION", durable)
        return unsent == 0 and info.num_pending == 0 and info.num_ack_pending == 0

    await eventually(published_and_consumed, timeout_s=30)
    async with runtime.sessions() as session:
        inboxed = await session.scalar(
            select(func.count()).where(
                inbox.c.consumer == durable, inbox.c.event_id.in_(list(events))
            )
        )
    assert inboxed == 0


@pytest.mark.parametrize("conversion", ["postgres"], indirect=True)
async def test_a_large_batch_is_copied_in_notices_too(
    conversion: RunningService, stub: Any, tenant: str
) -> None:
    """A batch of `COPY_FROM` leads or more writes its leads, history, `lead.assigned` rows and
    rep notices with a COPY each (`loopkit.bulk`): the notices of leads new in the transaction
    need no ON CONFLICT, so they take the COPY too. Every lead is stored once, assigned round
    the reps in turn, and told."""
    runtime = conversion.runtime
    reps = [await make_rep(stub, tenant, f"copied-{i}", capacity=100) for i in range(3)]
    leads = [f"lead-copy-{uuid.uuid4().hex[:12]}" for _ in range(COPY_FROM + 6)]
    notices = NoticeService(runtime.settings.account_registry(), gateway=False)
    sales = SalesService(runtime.outbox, notices)
    seen: list[str] = []

    def heard(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if conn is mine and statement.split(maxsplit=1)[0] in ("INSERT", "COPY"):
            seen.append(" ".join(statement.split()[:3]))

    engine = runtime.engine.sync_engine
    async with runtime.sessions() as session, session.begin():
        mine = (await session.connection()).sync_connection
        event.listen(engine, "before_cursor_execute", heard)
        try:
            await sales.capture_leads(session, [(tenant, _lead(lead_id)) for lead_id in leads])
        finally:
            event.remove(engine, "before_cursor_execute", heard)
    tables = ["leads", "lead_assignments", "outbox", "rep_notices"]
    assert sorted(seen) == sorted(f'COPY "{t}" ("id",' for t in tables), seen
    async with runtime.sessions() as session:
        given = dict(
            (
                await session.execute(
                    select(LeadRow.id, LeadRow.rep_id).where(LeadRow.id.in_(leads))
                )
            ).all()
        )
        told = dict(
            (
                await session.execute(
                    select(RepNoticeRow.lead_id, RepNoticeRow.rep_id).where(
                        RepNoticeRow.tenant_id == tenant, RepNoticeRow.lead_id.in_(leads)
                    )
                )
            ).all()
        )
    assert told == given and len(given) == len(leads)
    per_rep = Counter(given.values())
    assert sorted(per_rep) == sorted(r.rep_id for r in reps)
    assert max(per_rep.values()) - min(per_rep.values()) <= 1  # round-robin
