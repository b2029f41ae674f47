"""Consumers: lead.captured from acquisition, customer.merged/unmerged/forgotten from identity."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop_conversion.common import now
from closedloop_conversion.customers.service import CustomerEvents
from closedloop_conversion.sales.inputs import CapturedLead
from closedloop_conversion.sales.service import SalesService
from loopkit.consumer import Subscription
from loopkit.customer_events import identity_subscription
from loopkit.envelopes import occurred_at, payload
from loopkit.errors import InvalidArgument

# Leads per fetched batch of the lead.captured consumer (`bench/assignment.py`: 0.25 against
# 0.35 CPU ms per event at 100).
LEADS_BATCH = 500


class EventHandlers:
    def __init__(self, sales: SalesService, customers: CustomerEvents) -> None:
        self._sales = sales
        self._customers = customers

    def subscriptions(self) -> list[Subscription]:
        return [
            # A fetched batch's leads are assigned together (one rep pool lock, multi-row writes);
            # the kit retries them one by one when the batch fails, so a bad one fails alone.
            # Most of a batch's cost is per batch (the reads, the lock, a statement per table):
            # batches of LEADS_BATCH, not the kit's default of 100.
            Subscription.to(
                "acquisition",
                "leads",
                {},
                batch_handlers={"lead.captured": self.leads_captured},
                batch_size=LEADS_BATCH,
            ),
            identity_subscription(
                on_merged=self.merged, on_unmerged=self.unmerged, on_forgotten=self.forgotten
            ),
        ]

    async def leads_captured(self, session: AsyncSession, envs: Sequence[Envelope]) -> None:
        await self._sales.capture_leads(session, [captured_lead(env) for env in envs])

    async def merged(
        self, session: AsyncSession, tenant: str, survivor: str, merged: str, merge_id: str
    ) -> None:
        await self._customers.merged(session, tenant, survivor, merged, merge_id)

    async def unmerged(
        self, session: AsyncSession, tenant: str, restored: str, survivor: str, merge_id: str
    ) -> None:
        await self._customers.unmerged(session, tenant, restored, survivor, merge_id)

    async def forgotten(self, session: AsyncSession, tenant: str, ids: Sequence[str]) -> None:
        await self._customers.forgotten(session, tenant, ids)


def captured_lead(env: Envelope) -> tuple[str, CapturedLead]:
    """The tenant and the lead of a lead.captured event; InvalidArgument when it lacks either."""
    event = payload(env, acq.LeadCaptured)
    if not event.lead_id or len(event.lead_id) > 64:
        raise InvalidArgument("lead_id is required (at most 64 characters)", field="lead_id")
    if not env.tenant_id:
        raise InvalidArgument("tenant_id is required", field="tenant_id")
    lead = CapturedLead(
        lead_id=event.lead_id,
        customer_id=env.customer_id[:26],
        campaign_id=event.campaign_id[:64],
        channel_id=event.channel_id[:64],
        owner_team=event.owner_team[:128],
        region=event.region[:128],
        tags=tuple(t[:64] for t in event.tags),
        captured_at=occurred_at(env, now),
        daily_cap=max(0, event.daily_cap_per_rep),
    )
    return env.tenant_id, lead
