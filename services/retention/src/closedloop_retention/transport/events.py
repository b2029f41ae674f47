"""Handlers of other services' events: translate each into activity, lifecycle and loyalty calls.

Each runs inside the consumer's transaction (the inbox makes redeliveries no-ops); the event's own
time is the clock, so replays and late events land where they happened."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1 import acquisition_events_pb2 as acq
from closedloop.events.v1 import conversion_events_pb2 as conv
from closedloop.events.v1 import referral_events_pb2 as ref
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop_retention.activity import people
from closedloop_retention.activity.rules import RulesRepository
from closedloop_retention.activity.service import ActivityService, Contact
from closedloop_retention.clock import now
from closedloop_retention.loyalty.service import LoyaltyService
from loopkit.consumer import Handler, Subscription
from loopkit.customer_events import identity_subscription
from loopkit.errors import InvalidArgument
from loopkit.events import unpack

# Identities a message can reach, best first.
_CONTACT_KINDS = {
    c.IDENTITY_KIND_WECHAT_OPENID: "wechat_openid",
    c.IDENTITY_KIND_WECOM_EXTERNAL_USERID: "wecom_external_userid",
    c.IDENTITY_KIND_MINI_PROGRAM_OPENID: "mini_program_openid",
}


def _contact(identities: Sequence[c.Identity]) -> Contact | None:
    for kind, name in _CONTACT_KINDS.items():
        for ident in identities:
            if ident.kind == kind and ident.value:
                return Contact(name, ident.scope, ident.value)
    return None


def _at(env: Envelope) -> datetime:
    if env.HasField("occurred_at"):
        return env.occurred_at.ToDatetime(tzinfo=UTC)
    return now()


def _items(items: Sequence[conv.OrderItem]) -> list[dict[str, object]]:
    return [
        {"sku": i.sku, "name": i.name, "quantity": i.quantity, "category": i.category}
        for i in items
    ]


class EventHandlers:
    def __init__(
        self, activity: ActivityService, loyalty: LoyaltyService, rules: RulesRepository
    ) -> None:
        self._activity = activity
        self._loyalty = loyalty
        self._rules = rules

    def subscriptions(self) -> list[Subscription]:
        acquisition: dict[str, Handler] = {
            "touch.recorded": self.touch_recorded,
            "lead.captured": self.lead_captured,
            "interaction.recorded": self.interaction_recorded,
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
        return [
            Subscription.to("acquisition", "acquisition", acquisition),
            Subscription.to("conversion", "conversion", conversion),
            Subscription.to("referral", "referral", referral),
            identity_subscription(on_merged=self.merged, on_forgotten=self.forgotten),
        ]

    # --- acquisition ------------------------------------------------------------------------

    async def touch_recorded(self, session: AsyncSession, env: Envelope) -> None:
        event = unpack(env, acq.TouchRecorded)
        if not env.customer_id:
            return  # an anonymous visitor: nobody to keep yet
        at = _at(env)
        row = await self._activity.touch(session, env.tenant_id, env.customer_id, at)
        self._activity.set_contact(row, _contact(event.identities))
        if not event.expired:
            self._activity.set_channel(row, event.channel_id, event.channel_kind)
        if event.kind == acq.TOUCH_KIND_UNSUBSCRIBE:
            row.unsubscribed = True
        elif event.kind == acq.TOUCH_KIND_SUBSCRIBE:
            row.unsubscribed = False
        await self._activity.recompute(session, row, at)

    async def lead_captured(self, session: AsyncSession, env: Envelope) -> None:
        event = unpack(env, acq.LeadCaptured)
        if not env.customer_id:
            raise InvalidArgument("lead.captured without a customer", field="customer_id")
        at = _at(env)
        row = await self._activity.touch(session, env.tenant_id, env.customer_id, at)
        self._activity.set_contact(row, _contact(event.identities))
        attribution = event.attribution
        self._activity.set_channel(
            row,
            attribution.first_channel_id or event.channel_id,
            attribution.channel_kind,
        )
        if event.consent_granted:
            row.consent = True
        await self._activity.add_tags(session, env.tenant_id, env.customer_id, event.tags, "lead")
        await self._activity.recompute(session, row, at)

    async def interaction_recorded(self, session: AsyncSession, env: Envelope) -> None:
        unpack(env, acq.InteractionRecorded)
        if not env.customer_id:
            return
        at = _at(env)
        rules = await self._rules.get(session, env.tenant_id)
        row = await self._activity.touch(session, env.tenant_id, env.customer_id, at)
        await self._activity.interacted(row, at, rules)
        await self._activity.recompute(session, row, at, rules)

    # --- conversion -------------------------------------------------------------------------

    async def lead_assigned(self, session: AsyncSession, env: Envelope) -> None:
        event = unpack(env, conv.LeadAssigned)
        if not env.customer_id:
            return
        row = await self._activity.touch(session, env.tenant_id, env.customer_id, _at(env))
        if event.rep_id:
            row.owner_rep_id = event.rep_id

    async def followup_logged(self, session: AsyncSession, env: Envelope) -> None:
        event = unpack(env, conv.FollowUpLogged)
        if not env.customer_id:
            return
        at = _at(env)
        rules = await self._rules.get(session, env.tenant_id)
        row = await self._activity.touch(session, env.tenant_id, env.customer_id, at)
        if event.rep_id and not row.owner_rep_id:
            row.owner_rep_id = event.rep_id
        if event.inbound:
            await self._activity.interacted(row, at, rules)
        await self._activity.recompute(session, row, at, rules)

    async def ownership_started(self, session: AsyncSession, env: Envelope) -> None:
        event = unpack(env, conv.OwnershipStarted)
        if not env.customer_id:
            return
        at = _at(env)
        row = await self._activity.touch(session, env.tenant_id, env.customer_id, at)
        row.owner_rep_id = event.rep_id or row.owner_rep_id
        row.deleted_rep = False
        if not row.contact_value:
            self._activity.set_contact(row, _contact([event.external_contact]))
        await self._activity.recompute(session, row, at)

    async def ownership_ended(self, session: AsyncSession, env: Envelope) -> None:
        event = unpack(env, conv.OwnershipEnded)
        if not env.customer_id:
            return
        at = _at(env)
        row = await self._activity.touch(session, env.tenant_id, env.customer_id, at)
        if event.reason == conv.OWNERSHIP_END_REASON_CUSTOMER_DELETED_REP:
            row.deleted_rep = True
        await self._activity.recompute(session, row, at)

    async def order_paid(self, session: AsyncSession, env: Envelope) -> None:
        event = unpack(env, conv.OrderPaid)
        if not env.customer_id or not event.order_id:
            raise InvalidArgument("order.paid without a customer or order id", field="order_id")
        at = _at(env)
        rules = await self._rules.get(session, env.tenant_id)
        row = await self._activity.touch(session, env.tenant_id, env.customer_id, at)
        if event.rep_id:
            row.owner_rep_id = event.rep_id
        amount = max(event.amount.amount_minor, 0)
        counted = await self._activity.order_paid(
            session, row, event.order_id, amount, items=_items(event.items), at=at
        )
        if counted:
            await self._loyalty.credit_order(
                session,
                env.tenant_id,
                env.customer_id,
                event.order_id,
                amount_minor=amount,
                rules=rules,
                at=at,
            )
        await self._activity.recompute(session, row, at, rules)

    async def order_refunded(self, session: AsyncSession, env: Envelope) -> None:
        event = unpack(env, conv.OrderRefunded)
        if not env.customer_id or not event.order_id:
            raise InvalidArgument("order.refunded without a customer or order id", field="order_id")
        at = _at(env)
        row = await self._activity.touch(session, env.tenant_id, env.customer_id, at)
        total = event.refunded_total.amount_minor or event.refunded.amount_minor
        order = await self._activity.order_refunded(session, row, event.order_id, total, event.full)
        if order is not None:
            await self._loyalty.reverse_order(
                session,
                env.tenant_id,
                order.customer_id,
                event.order_id,
                refunded_total_minor=order.refunded_minor,
                order_amount_minor=order.amount_minor,
                at=at,
            )
        await self._activity.recompute(session, row, at)

    # --- referral ---------------------------------------------------------------------------

    async def referral_converted(self, session: AsyncSession, env: Envelope) -> None:
        event = unpack(env, ref.ReferralConverted)
        at = _at(env)
        if env.customer_id:
            await self._activity.touch(session, env.tenant_id, env.customer_id, at)
        if event.referrer_customer_id:
            referrer = await self._activity.touch(
                session, env.tenant_id, event.referrer_customer_id, at
            )
            referrer.referrals_made += 1

    async def reward_granted(self, session: AsyncSession, env: Envelope) -> None:
        event = unpack(env, ref.RewardGranted)
        if not env.customer_id or not event.reward_id:
            raise InvalidArgument(
                "reward.granted without a customer or reward id", field="reward_id"
            )
        at = _at(env)
        await self._activity.touch(session, env.tenant_id, env.customer_id, at)
        if event.kind == ref.REWARD_KIND_POINTS and event.points > 0:
            await self._loyalty.post(
                session,
                env.tenant_id,
                env.customer_id,
                event.points,
                source="referral",
                source_ref=event.reward_id,
                reason=f"referral reward (level {event.level})",
                key=f"reward:{event.reward_id}",
                at=at,
            )
        elif event.kind == ref.REWARD_KIND_COUPON and event.coupon_template_id:
            await self._loyalty.issue_coupon(
                session,
                env.tenant_id,
                env.customer_id,
                template_id=event.coupon_template_id,
                value_minor=0,
                valid_days=30,
                reason="referral reward",
                key=f"reward:{event.reward_id}",
                at=at,
            )

    async def reward_revoked(self, session: AsyncSession, env: Envelope) -> None:
        event = unpack(env, ref.RewardRevoked)
        if not env.customer_id or not event.reward_id or event.points <= 0:
            return
        await self._loyalty.post(
            session,
            env.tenant_id,
            env.customer_id,
            -event.points,
            source="revoke",
            source_ref=event.reward_id,
            reason=event.reason or "referral reward revoked",
            key=f"revoke:{event.reward_id}",
            at=_at(env),
            allow_negative=True,
        )

    # --- identity ---------------------------------------------------------------------------

    async def merged(self, session: AsyncSession, tenant: str, survivor: str, gone: str) -> None:
        await people.merge(session, self._activity, tenant, survivor, gone, now=now())

    async def forgotten(self, session: AsyncSession, tenant: str, ids: Sequence[str]) -> None:
        await people.forget(session, tenant, ids)
