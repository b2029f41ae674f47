"""The customer 360's side of the consumed events: each message converted into one call of the
360's intake. Chained after the activity model's handler of the same event (transport/events.py),
so both run in the consumer's one transaction and its inbox makes a redelivery a no-op for both."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.events.v1 import conversion_events_pb2 as conv
from closedloop.events.v1 import referral_events_pb2 as ref
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop_retention.clock import now
from closedloop_retention.customer360.intake import Customer360Intake
from closedloop_retention.customer360.views import LeadFacts
from loopkit.consumer import Handler
from loopkit.envelopes import occurred_at, payload


def _enum_name(enum: Any, value: int, prefix: str) -> str:
    """An event enum's value as a short lower-case word ("chat"); an unknown number as itself."""
    try:
        return str(enum.Name(value)).removeprefix(prefix).lower()
    except ValueError:
        return str(value)


def _then(first: Handler, second: Handler) -> Handler:
    """One handler running `first`, then `second`, on the same message and transaction."""

    async def both(session: AsyncSession, env: Envelope) -> None:
        await first(session, env)
        await second(session, env)

    return both


def also(own: dict[str, Handler], extra: dict[str, Handler]) -> dict[str, Handler]:
    """`own` handlers with `extra` run after them (or alone, for an event only `extra` takes)."""
    return {**own, **{k: _then(own[k], h) if k in own else h for k, h in extra.items()}}


class Customer360Feed:
    def __init__(self, intake: Customer360Intake) -> None:
        self._c360 = intake

    def unless_forgotten(self, own: dict[str, Handler]) -> dict[str, Handler]:
        """`own` handlers skipping the events of a customer retention erased: one arriving late
        or replayed would otherwise bring back their activity row, tags or points."""
        return {event: self._guarded(handler) for event, handler in own.items()}

    def _guarded(self, handler: Handler) -> Handler:
        async def unless_forgotten(session: AsyncSession, env: Envelope) -> None:
            if env.customer_id and await self._c360.is_forgotten(
                session, env.tenant_id, env.customer_id
            ):
                return
            await handler(session, env)

        return unless_forgotten

    def handlers(self) -> dict[str, dict[str, Handler]]:
        """Per producer and event type, what the 360 does with it."""
        return {
            "acquisition": {
                "touch.recorded": self.touch_recorded,
                "lead.captured": self.lead_captured,
                "interaction.recorded": self.interaction_recorded,
            },
            "conversion": {
                "lead.assigned": self.lead_assigned,
                "followup.logged": self.followup_logged,
                "ownership.started": self.ownership_started,
                "ownership.ended": self.ownership_ended,
                "order.paid": self.order_paid,
                "order.refunded": self.order_refunded,
            },
            "referral": {
                "referral.converted": self.referral_converted,
                "share.recorded": self.share_recorded,
                "reward.granted": self.reward_granted,
                "reward.revoked": self.reward_revoked,
            },
        }

    async def touch_recorded(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, acq.TouchRecorded)
        if env.customer_id:
            await self._c360.touched(
                session,
                env.tenant_id,
                env.customer_id,
                occurred_at(env, now),
                event_id=env.id,
                kind=_enum_name(acq.TouchKind, event.kind, "TOUCH_KIND_"),
                channel_id=event.channel_id,
            )

    async def lead_captured(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, acq.LeadCaptured)
        if not env.customer_id:
            return  # the activity handler dead-letters it
        attribution = event.attribution
        lead = LeadFacts(
            lead_id=event.lead_id or env.id,
            campaign_id=attribution.first_campaign_id or event.campaign_id,
            channel_id=attribution.first_channel_id or event.channel_id,
            channel_kind=attribution.channel_kind,
            referrer_id=attribution.referrer_customer_id,
            referral_code=attribution.referral_code,
        )
        await self._c360.lead_captured(
            session, env.tenant_id, env.customer_id, occurred_at(env, now), lead
        )

    async def interaction_recorded(self, session: AsyncSession, env: Envelope) -> None:
        payload(env, acq.InteractionRecorded)
        if env.customer_id:
            await self._c360.interacted(
                session, env.tenant_id, env.customer_id, occurred_at(env, now), env.id
            )

    async def lead_assigned(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, conv.LeadAssigned)
        if env.customer_id:
            await self._c360.lead_assigned(
                session,
                env.tenant_id,
                env.customer_id,
                occurred_at(env, now),
                event_id=env.id,
                lead_id=event.lead_id,
                rep_id=event.rep_id,
                previous_rep_id=event.previous_rep_id,
            )

    async def followup_logged(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, conv.FollowUpLogged)
        if env.customer_id:
            await self._c360.followed_up(
                session,
                env.tenant_id,
                env.customer_id,
                occurred_at(env, now),
                follow_up_id=event.follow_up_id or env.id,
                lead_id=event.lead_id,
                rep_id=event.rep_id,
                kind=_enum_name(conv.FollowUpKind, event.kind, "FOLLOW_UP_KIND_"),
                inbound=event.inbound,
            )

    async def ownership_started(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, conv.OwnershipStarted)
        if env.customer_id:
            await self._c360.ownership(
                session,
                env.tenant_id,
                env.customer_id,
                occurred_at(env, now),
                event_id=env.id,
                kind="ownership.started",
                summary=f"became a WeCom contact of {event.rep_id}",
            )

    async def ownership_ended(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, conv.OwnershipEnded)
        if env.customer_id:
            why = _enum_name(conv.OwnershipEndReason, event.reason, "OWNERSHIP_END_REASON_")
            await self._c360.ownership(
                session,
                env.tenant_id,
                env.customer_id,
                occurred_at(env, now),
                event_id=env.id,
                kind="ownership.ended",
                summary=f"no longer a WeCom contact of {event.rep_id} ({why.replace('_', ' ')})",
            )

    async def order_paid(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, conv.OrderPaid)
        if env.customer_id and event.order_id:
            await self._c360.order_paid(
                session,
                env.tenant_id,
                env.customer_id,
                occurred_at(env, now),
                order_id=event.order_id,
                rep_id=event.rep_id,
                lead_id=event.lead_id,
                currency=event.amount.currency,
                amount_minor=event.amount.amount_minor,
            )

    async def order_refunded(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, conv.OrderRefunded)
        if env.customer_id and event.order_id:
            total = event.refunded_total.amount_minor or event.refunded.amount_minor
            await self._c360.order_refunded(
                session,
                env.tenant_id,
                env.customer_id,
                occurred_at(env, now),
                event_id=env.id,
                order_id=event.order_id,
                refunded_minor=event.refunded.amount_minor,
                refunded_total_minor=total,
                currency=event.refunded.currency or event.refunded_total.currency,
                full=event.full,
            )

    async def referral_converted(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, ref.ReferralConverted)
        await self._c360.referral_converted(
            session,
            env.tenant_id,
            env.customer_id,
            occurred_at(env, now),
            referrer=event.referrer_customer_id,
            referral_id=event.referral_id,
        )

    async def share_recorded(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, ref.ShareRecorded)
        if env.customer_id and event.code:
            await self._c360.shared(
                session,
                env.tenant_id,
                env.customer_id,
                occurred_at(env, now),
                share_id=event.share_id or env.id,
                code=event.code,
            )

    async def reward_granted(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, ref.RewardGranted)
        if env.customer_id and event.reward_id:
            await self._c360.reward_granted(
                session,
                env.tenant_id,
                env.customer_id,
                occurred_at(env, now),
                reward_id=event.reward_id,
                referral_id=event.referral_id,
                kind=_enum_name(ref.RewardKind, event.kind, "REWARD_KIND_"),
                points=event.points,
                coupon_template_id=event.coupon_template_id,
                level=event.level,
            )

    async def reward_revoked(self, session: AsyncSession, env: Envelope) -> None:
        event = payload(env, ref.RewardRevoked)
        if not event.reward_id or not (event.was_granted or event.points > 0):
            return  # voided before its grant: the customer never had it
        if env.customer_id:
            await self._c360.reward_revoked(
                session,
                env.tenant_id,
                env.customer_id,
                occurred_at(env, now),
                reward_id=event.reward_id,
                kind=_enum_name(ref.RewardKind, event.kind, "REWARD_KIND_"),
                reason=event.reason,
            )
