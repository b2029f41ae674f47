"""Consumers of other services' events: each message converted into one domain call.

Each runs inside the consumer's transaction (the inbox makes redeliveries no-ops); the event's own
time is the clock, so replays and late events land where they happened."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.events.v1 import conversion_events_pb2 as conv
from closedloop.events.v1 import referral_events_pb2 as ref
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop_retention.activity.intake import ActivityIntake, Channel, Contact
from closedloop_retention.activity.people import People
from closedloop_retention.clock import now
from closedloop_retention.customer360.service import Customer360Service
from closedloop_retention.fission.service import FissionService, GoalReached
from closedloop_retention.funnel.service import FunnelService, Source
from closedloop_retention.loyalty.clawback import Revocation, RewardClawback
from closedloop_retention.loyalty.service import LoyaltyService
from closedloop_retention.loyalty.views import RewardGrant
from closedloop_retention.transport.events_360 import Customer360Feed, also
from loopkit.consumer import Handler, Subscription
from loopkit.customer_events import identity_subscription
from loopkit.envelopes import occurred_at, payload
from loopkit.errors import InvalidArgument

# Identities a message can reach, best first.
_CONTACT_KINDS = {
    c.IDENTITY_KIND_WECHAT_OPENID: "wechat_openid",
    c.IDENTITY_KIND_WECOM_EXTERNAL_USERID: "wecom_external_userid",
    c.IDENTITY_KIND_MINI_PROGRAM_OPENID: "mini_program_openid",
}
_SUBSCRIBED = {acq.TOUCH_KIND_SUBSCRIBE: True, acq.TOUCH_KIND_UNSUBSCRIBE: False}


def _contact(identities: Sequence[c.Identity]) -> Contact | None:
    for kind, name in _CONTACT_KINDS.items():
        for ident in identities:
            if ident.kind == kind and ident.value:
                return Contact(name, ident.scope, ident.value)
    return None


def _items(items: Sequence[conv.OrderItem]) -> list[dict[str, object]]:
    return [
        {"sku": i.sku, "name": i.name, "quantity": i.quantity, "category": i.category}
        for i in items
    ]


class EventHandlers:
    def __init__(
        self,
        intake: ActivityIntake,
        loyalty: LoyaltyService,
        people: People,
        funnel: FunnelService,
        *,
        clawback: RewardClawback,
        fission: FissionService,
        c360: Customer360Service,
    ) -> None:
        self._c360 = c360
        self._intake = intake
        self._loyalty = loyalty
        self._people = people
        self._funnel = funnel
        self._clawback = clawback
        self._fission = fission

    def subscriptions(self) -> list[Subscription]:
        acquisition: dict[str, Handler] = {
            "touch.recorded": self.touch_recorded,
            "lead.captured": self.lead_captured,
            "interaction.recorded": self.interaction_recorded,
            "fission.goal_reached": self.fission_goal_reached,
        }
        conversion: dict[str, Handler] = {
            "lead.assigned": self.lead_assigned,
            "followup.logged": self.followup_logged,
            "ownership.started": self.ownership_started,
            "ownership.ended": self.ownership_ended,
            "order.paid": self.order_paid,
            "order.refunded": self.order_refunded,
        }
        referral: dict[str, Handler] = {
            "referral.converted": self.referral_converted,
            "reward.granted": self.reward_granted,
            "reward.revoked": self.reward_revoked,
        }
        # The customer 360 follows the same events in the same transactions (transport/events_360).
        # Neither follows the events of a customer already forgotten (their erasure takes the
        # same per-customer lock first, so the two cannot interleave).
        c360 = Customer360Feed(self._c360.intake)
        feed, own = c360.handlers(), c360.unless_forgotten
        return [
            Subscription.to(
                "acquisition", "acquisition", also(own(acquisition), feed["acquisition"])
            ),
            Subscription.to("conversion", "conversion", also(own(conversion), feed["conversion"])),
            Subscription.to("referral", "referral", also(own(referral), feed["referral"])),
            identity_subscription(
                on_merged=self.merged, on_unmerged=self.unmerged, on_forgotten=self.forgotten
            ),
            *self.funnel_subscriptions(),
        ]

    def funnel_subscriptions(self) -> list[Subscription]:
        """The funnel read model's consumers: durables of their own, so a rebuild
        (transport/rebuild_funnel) replays the streams into it and nothing else."""
        acquisition: dict[str, Handler] = {
            "touch.recorded": self.funnel_touch_recorded,
            "lead.captured": self.funnel_lead_captured,
        }
        conversion: dict[str, Handler] = {
            "lead.assigned": self.funnel_lead_assigned,
            "order.paid": self.funnel_order_paid,
        }
        referral: dict[str, Handler] = {"referral.converted": self.funnel_referral_converted}
        return [
            Subscription.to("acquisition", "funnel-acquisition", acquisition),
            Subscription.to("conversion", "funnel-conversion", conversion),
            Subscription.to("referral", "funnel-referral", referral),
            identity_subscription(
                on_merged=self.funnel_merged,
                on_unmerged=self.funnel_unmerged,
                on_forgotten=self.funnel_forgotten,
                name="funnel-identity",
            ),
        ]

    # --- acquisition ------------------------------------------------------------------------

    async def touch_recorded(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, acq.TouchRecorded)
        if not env.customer_id:
            return  # an anonymous visitor: nobody to keep yet
        await self._intake.touched(
            session,
            env.tenant_id,
            env.customer_id,
            occurred_at(env, now),
            contact=_contact(event.identities),
            channel=None if event.expired else Channel(event.channel_id, event.channel_kind),
            subscribed=_SUBSCRIBED.get(event.kind),
            # A scan or subscribe opens WeChat's 48-hour customer-service window, as the
            # gateway counts it.
            opens_window=event.kind in (acq.TOUCH_KIND_SCAN, acq.TOUCH_KIND_SUBSCRIBE),
        )

    async def lead_captured(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, acq.LeadCaptured)
        if not env.customer_id:
            raise InvalidArgument("lead.captured without a customer", field="customer_id")
        attribution = event.attribution
        await self._intake.lead_captured(
            session,
            env.tenant_id,
            env.customer_id,
            occurred_at(env, now),
            contact=_contact(event.identities),
            channel=Channel(
                attribution.first_channel_id or event.channel_id, attribution.channel_kind
            ),
            consent=event.consent_granted,
            tags=list(event.tags),
        )

    async def interaction_recorded(self, session: AsyncSession, env: Envelope) -> None:
        payload(env, acq.InteractionRecorded)
        if not env.customer_id:
            return
        await self._intake.interaction_recorded(
            session, env.tenant_id, env.customer_id, occurred_at(env, now)
        )

    # --- conversion -------------------------------------------------------------------------

    async def lead_assigned(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, conv.LeadAssigned)
        if not env.customer_id:
            return
        await self._intake.lead_assigned(
            session, env.tenant_id, env.customer_id, occurred_at(env, now), event.rep_id
        )

    async def followup_logged(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, conv.FollowUpLogged)
        if not env.customer_id:
            return
        await self._intake.followup_logged(
            session,
            env.tenant_id,
            env.customer_id,
            occurred_at(env, now),
            rep_id=event.rep_id,
            inbound=event.inbound,
        )

    async def ownership_started(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, conv.OwnershipStarted)
        if not env.customer_id:
            return
        await self._intake.ownership_started(
            session,
            env.tenant_id,
            env.customer_id,
            occurred_at(env, now),
            rep_id=event.rep_id,
            contact=_contact([event.external_contact]),
        )

    async def ownership_ended(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, conv.OwnershipEnded)
        if not env.customer_id:
            return
        await self._intake.ownership_ended(
            session,
            env.tenant_id,
            env.customer_id,
            occurred_at(env, now),
            deleted_rep=event.reason == conv.OWNERSHIP_END_REASON_CUSTOMER_DELETED_REP,
        )

    async def order_paid(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, conv.OrderPaid)
        if not env.customer_id or not event.order_id:
            raise InvalidArgument("order.paid without a customer or order id", field="order_id")
        await self._intake.order_paid(
            session,
            env.tenant_id,
            env.customer_id,
            occurred_at(env, now),
            order_id=event.order_id,
            amount_minor=event.amount.amount_minor,
            rep_id=event.rep_id,
            items=_items(event.items),
        )

    async def order_refunded(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, conv.OrderRefunded)
        if not env.customer_id or not event.order_id:
            raise InvalidArgument("order.refunded without a customer or order id", field="order_id")
        await self._intake.order_refunded(
            session,
            env.tenant_id,
            env.customer_id,
            occurred_at(env, now),
            order_id=event.order_id,
            refunded_total_minor=event.refunded_total.amount_minor or event.refunded.amount_minor,
            full=event.full,
        )

    async def fission_goal_reached(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, acq.FissionGoalReached)
        who = event.participant_customer_id or env.customer_id
        if who:
            # A goal naming a merged-away id is the survivor's (so a republished one that the
            # merge moved is found, not granted again).
            who = await self._people.survivor_of(session, env.tenant_id, who)
        goal = GoalReached(
            tenant_id=env.tenant_id,
            campaign_id=event.campaign_id,
            participant_id=who,
            invited=event.invited,
            reward_text=event.reward,
            event_id=env.id,
            at=occurred_at(env, now),
        )
        await self._fission.goal_reached(session, goal)

    # --- referral ---------------------------------------------------------------------------

    async def referral_converted(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, ref.ReferralConverted)
        referrer = event.referrer_customer_id
        if referrer and await self._c360.intake.is_forgotten(session, env.tenant_id, referrer):
            referrer = ""  # a forgotten referrer's count is not brought back
        await self._intake.referral_converted(
            session, env.tenant_id, env.customer_id, referrer, occurred_at(env, now)
        )

    async def reward_granted(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, ref.RewardGranted)
        if not env.customer_id or not event.reward_id:
            raise InvalidArgument(
                "reward.granted without a customer or reward id", field="reward_id"
            )
        if await self._clawback.revoked_already(session, env.tenant_id, event.reward_id):
            return  # taken back before its grant was handled: nothing to hand out
        grant = RewardGrant(
            reward_id=event.reward_id,
            points=event.points if event.kind == ref.REWARD_KIND_POINTS else 0,
            coupon_template_id=(
                event.coupon_template_id if event.kind == ref.REWARD_KIND_COUPON else ""
            ),
            level=event.level,
        )
        await self._intake.reward_granted(
            session, env.tenant_id, env.customer_id, grant, occurred_at(env, now)
        )

    async def reward_revoked(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, ref.RewardRevoked)
        if not event.reward_id or not (event.was_granted or event.points > 0):
            return  # voided before its grant: retention never handed anything out
        revocation = Revocation(reward_id=event.reward_id, reason=event.reason)
        await self._clawback.revoke(session, env.tenant_id, revocation, occurred_at(env, now))

    # --- identity ---------------------------------------------------------------------------

    async def merged(
        self, session: AsyncSession, tenant: str, survivor: str, gone: str, merge_id: str
    ) -> None:
        await self._people.merge(session, tenant, survivor, gone, now=now(), merge_id=merge_id)
        await self._c360.merge(session, tenant, survivor, gone, merge_id=merge_id)

    async def unmerged(
        self, session: AsyncSession, tenant: str, restored: str, survivor: str, merge_id: str
    ) -> None:
        # Gives back every row the merge logged, the customer 360's included.
        await self._people.unmerge(
            session, tenant, restored, survivor, merge_id=merge_id, now=now()
        )

    async def forgotten(self, session: AsyncSession, tenant: str, ids: Sequence[str]) -> None:
        # The 360 first: it takes the customers' locks and records them as forgotten, so an
        # event of theirs handled at the same time waits, then sees them gone.
        await self._c360.forget(session, tenant, list(ids), now())
        await self._people.forget(session, tenant, ids)

    # --- the funnel read model ----------------------------------------------------------------

    async def funnel_touch_recorded(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, acq.TouchRecorded)
        if not env.customer_id:
            return  # an anonymous visitor: exposure is counted per known customer
        await self._funnel.touched(
            session,
            env.tenant_id,
            env.customer_id,
            occurred_at(env, now),
            Source(event.campaign_id, event.channel_id),
        )

    async def funnel_lead_captured(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, acq.LeadCaptured)
        if not env.customer_id:
            return  # retention's activity consumer dead-letters it; nothing to count here
        attribution = event.attribution
        await self._funnel.lead_captured(
            session,
            env.tenant_id,
            env.customer_id,
            occurred_at(env, now),
            Source(
                attribution.first_campaign_id or event.campaign_id,
                attribution.first_channel_id or event.channel_id,
            ),
            referrer=attribution.referrer_customer_id,
        )

    async def funnel_lead_assigned(self, session: AsyncSession, env: Envelope) -> None:
        payload(env, conv.LeadAssigned)
        if env.customer_id:
            await self._funnel.lead_assigned(
                session, env.tenant_id, env.customer_id, occurred_at(env, now)
            )

    async def funnel_order_paid(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, conv.OrderPaid)
        if env.customer_id and event.order_id:
            await self._funnel.order_paid(
                session, env.tenant_id, env.customer_id, event.order_id, occurred_at(env, now)
            )

    async def funnel_referral_converted(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, ref.ReferralConverted)
        if env.customer_id:
            await self._funnel.referral_converted(
                session,
                env.tenant_id,
                env.customer_id,
                event.referrer_customer_id,
                occurred_at(env, now),
            )

    async def funnel_merged(
        self, session: AsyncSession, tenant: str, survivor: str, gone: str, merge_id: str
    ) -> None:
        await self._funnel.merge(session, tenant, survivor, gone, merge_id)

    async def funnel_unmerged(
        self, session: AsyncSession, tenant: str, restored: str, survivor: str, merge_id: str
    ) -> None:
        await self._funnel.unmerge(session, tenant, restored, survivor, merge_id)

    async def funnel_forgotten(
        self, session: AsyncSession, tenant: str, ids: Sequence[str]
    ) -> None:
        await self._funnel.forget(session, tenant, ids)
