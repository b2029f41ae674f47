"""Event handlers: lead.captured from acquisition, customer.merged/forgotten from identity."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop_conversion.common import now
from closedloop_conversion.customers.service import CustomerEvents
from closedloop_conversion.sales.service import CapturedLead, SalesService
from loopkit.consumer import Subscription
from loopkit.customer_events import identity_subscription
from loopkit.envelopes import occurred_at, payload
from loopkit.errors import InvalidArgument


def lead_subscription(sales: SalesService) -> Subscription:
    async def captured(session: AsyncSession, env: Envelope) -> None:
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
        await sales.capture_lead(session, env.tenant_id, lead)

    return Subscription.to("acquisition", "leads", {"lead.captured": captured})


def customer_subscription(customers: CustomerEvents) -> Subscription:
    return identity_subscription(on_merged=customers.merged, on_forgotten=customers.forgotten)
