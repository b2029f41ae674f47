"""Consumers: acquisition's leads, conversion's orders and ownership, identity's customer events.

An event's customer id is read through the local aliases first (`CustomerEvents.live_id`): one
naming a customer merged away is counted for the survivor, one naming a forgotten one for nobody."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.common.v1 import common_pb2
from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.events.v1 import conversion_events_pb2 as conv
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop_referral.clock import now
from closedloop_referral.customers.service import CustomerEvents
from closedloop_referral.referrals.service import LeadFacts, OrderFacts, ReferralService
from loopkit.consumer import Subscription
from loopkit.customer_events import identity_subscription
from loopkit.envelopes import occurred_at, payload

_OPENID_KINDS = (
    common_pb2.IDENTITY_KIND_WECHAT_OPENID,
    common_pb2.IDENTITY_KIND_MINI_PROGRAM_OPENID,
)


class EventHandlers:
    def __init__(self, referrals: ReferralService, customers: CustomerEvents) -> None:
        self._referrals = referrals
        self._customers = customers

    def subscriptions(self) -> list[Subscription]:
        return [
            Subscription.to("acquisition", "leads", {"lead.captured": self.lead_captured}),
            Subscription.to(
                "conversion",
                "orders",
                {
                    "order.paid": self.order_paid,
                    "order.refunded": self.order_refunded,
                    "ownership.ended": self.ownership_ended,
                },
            ),
            identity_subscription(
                on_merged=self.merged, on_unmerged=self.unmerged, on_forgotten=self.forgotten
            ),
        ]

    async def lead_captured(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, acq.LeadCaptured)
        openids = [i.value for i in event.identities if i.kind in _OPENID_KINDS and i.value]
        newcomer = await self._customers.live_id(session, env.tenant_id, env.customer_id)
        await self._referrals.lead_captured(
            session,
            LeadFacts(
                tenant_id=env.tenant_id,
                newcomer_id=newcomer,
                lead_id=event.lead_id,
                referral_code=event.attribution.referral_code,
                referrer_id=event.attribution.referrer_customer_id,
                openids=openids,
                at=occurred_at(env, now),
            ),
        )

    async def order_paid(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, conv.OrderPaid)
        customer = await self._customers.live_id(session, env.tenant_id, env.customer_id)
        await self._referrals.order_paid(
            session,
            OrderFacts(
                tenant_id=env.tenant_id,
                customer_id=customer,
                order_id=event.order_id,
                amount_minor=event.amount.amount_minor,
                at=occurred_at(env, now),
            ),
        )

    async def order_refunded(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, conv.OrderRefunded)
        remaining = event.order_amount.amount_minor - event.refunded_total.amount_minor
        await self._referrals.order_refunded(
            session,
            env.tenant_id,
            event.order_id,
            full=event.full,
            remaining_minor=remaining if event.HasField("order_amount") else 0,
            at=occurred_at(env, now),
        )

    async def ownership_ended(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, conv.OwnershipEnded)
        if event.reason != conv.OWNERSHIP_END_REASON_CUSTOMER_DELETED_REP:
            return
        customer = await self._customers.live_id(session, env.tenant_id, env.customer_id)
        if customer:
            await self._referrals.customer_deleted_rep(
                session, env.tenant_id, customer, occurred_at(env, now)
            )

    async def merged(
        self, session: AsyncSession, tenant: str, survivor: str, merged: str, merge_id: str
    ) -> None:
        await self._customers.merged(session, tenant, survivor, merged, now(), merge_id)

    async def unmerged(
        self, session: AsyncSession, tenant: str, restored: str, survivor: str, merge_id: str
    ) -> None:
        await self._customers.unmerged(session, tenant, restored, survivor, merge_id)

    async def forgotten(self, session: AsyncSession, tenant: str, ids: Sequence[str]) -> None:
        await self._customers.forgotten(session, tenant, ids)
