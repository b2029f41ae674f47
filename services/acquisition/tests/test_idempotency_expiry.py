"""Idempotency keys are kept for `CLOSEDLOOP_IDEMPOTENCY_KEY_RETENTION_S` (7 days), then pruned:
a key still within it returns the first answer, an expired one is a new request."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from acquisition_helpers import Env, form
from closedloop.acquisition.v1 import acquisition_pb2 as pb
from closedloop_acquisition.models import Base, LeadRequestRow
from loopkit.expiry import ExpiringRows


async def test_expired_keys_are_pruned_and_fresh_ones_kept(env: Env) -> None:
    runtime = env.acquisition.runtime
    retention_s = runtime.settings.idempotency_key_retention_s
    assert retention_s == 7 * 86400  # the documented default
    campaign = await env.campaign()
    page = await env.page(campaign.campaign_id)
    old_key, fresh_key = str(uuid.uuid4()), str(uuid.uuid4())

    def call(key: str, phone: str) -> pb.CaptureLeadRequest:
        return pb.CaptureLeadRequest(
            tenant_id=env.tenant,
            page_id=page.page_id,
            values=form(phone_number=phone),
            request_id=key,
        )

    first = await env.stub.CaptureLead(call(old_key, "13700137001"))
    fresh = await env.stub.CaptureLead(call(fresh_key, "13700137002"))
    # The first key's row ages past the retention (a row of a week and a bit ago).
    table = Base.metadata.tables[LeadRequestRow.__tablename__]
    async with runtime.engine.begin() as conn:
        await conn.execute(
            update(table)
            .where(table.c.tenant_id == env.tenant, table.c.request_id == old_key)
            .values(created_at=datetime.now(UTC) - timedelta(seconds=retention_s + 3600))
        )

    # The service's own sweep does this every retention_sweep_interval_s.
    assert await ExpiringRows(runtime.engine, table, "created_at", retention_s).prune() >= 1

    async with runtime.engine.connect() as conn:
        left = await conn.scalar(
            select(func.count()).select_from(table).where(table.c.tenant_id == env.tenant)
        )
    assert left == 1
    # Within the retention, a retry still gets its first answer ...
    again = await env.stub.CaptureLead(call(fresh_key, "13700137002"))
    assert (again.lead.lead_id, again.repeat, again.lead.submissions) == (
        fresh.lead.lead_id,
        False,
        1,
    )
    # ... after it, the same key is a new request: here the same person submitting again.
    late = await env.stub.CaptureLead(call(old_key, "13700137001"))
    assert (late.lead.lead_id, late.repeat, late.lead.submissions) == (first.lead.lead_id, True, 2)
