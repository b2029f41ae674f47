"""Consumers: identity's customer events, referral's share visits, conversion's friend-adds."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1 import conversion_events_pb2 as cpb
from closedloop.events.v1 import referral_events_pb2 as rpb
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop_acquisition.clock import now
from closedloop_acquisition.customers.service import CustomerEvents
from closedloop_acquisition.touches.service import FriendAdd, ShareVisit, TouchService
from closedloop_acquisition.transport.convert import identities as identities_from_pb
from loopkit.consumer import Subscription
from loopkit.customer_events import identity_subscription
from loopkit.envelopes import occurred_at, payload


class EventHandlers:
    def __init__(self, touches: TouchService, customers: CustomerEvents) -> None:
        self._touches = touches
        self._customers = customers

    def subscriptions(self) -> list[Subscription]:
        return [
            identity_subscription(
                on_merged=self.merged, on_unmerged=self.unmerged, on_forgotten=self.forgotten
            ),
            Subscription.to("referral", "share-visits", {"share_visited": self.share_visited}),
            Subscription.to(
                "conversion", "friend-adds", {"ownership.started": self.ownership_started}
            ),
        ]

    async def merged(
        self,
        session: AsyncSession,
        tenant_id: str,
        survivor_id: str,
        merged_id: str,
        merge_id: str,
    ) -> None:
        await self._customers.merged(session, tenant_id, survivor_id, merged_id, now(), merge_id)

    async def unmerged(
        self,
        session: AsyncSession,
        tenant_id: str,
        restored_id: str,
        survivor_id: str,
        merge_id: str,
    ) -> None:
        await self._customers.unmerged(session, tenant_id, restored_id, survivor_id, merge_id)

    async def forgotten(
        self, session: AsyncSession, tenant_id: str, customer_ids: Sequence[str]
    ) -> None:
        await self._customers.forgotten(session, tenant_id, customer_ids)

    async def share_visited(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, rpb.ShareVisited)
        visit = ShareVisit(
            channel_id=event.channel_id,
            visitor=identities_from_pb(event.visitor_identities, "visitor_identities"),
            customer_id=env.customer_id,
            code=event.code,
            referrer_customer_id=event.referrer_customer_id,
            program_id=event.program_id,
            share_id=event.share_id,
            at=occurred_at(env, now),
        )
        await self._touches.share_visited(session, env.tenant_id, visit)

    async def ownership_started(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, cpb.OwnershipStarted)
        friend = FriendAdd(
            channel_id=event.channel_id,
            state=event.state,
            contact=identities_from_pb([event.external_contact], "external_contact"),
            customer_id=env.customer_id,
            rep_id=event.rep_id,
            at=occurred_at(env, now),
        )
        await self._touches.friend_added(session, env.tenant_id, friend)
