"""The customer 360's views as protobuf (GetCustomer360)."""

from __future__ import annotations

from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1 import retention_events_pb2 as ev
from closedloop.retention.v1 import retention_pb2 as pb
from closedloop_retention.activity.service import STAGE_PB
from closedloop_retention.customer360.views import Customer360, ReferralPosition
from closedloop_retention.transport.convert import activity_to_pb, tier_to_pb, value_to_pb
from loopkit.identity_client import identity_to_pb
from loopkit.timestamps import ts


def _referral_to_pb(found: ReferralPosition) -> pb.Customer360Referral:
    return pb.Customer360Referral(
        codes=found.codes,
        referred_by_customer_id=found.referred_by,
        referred_by_code=found.referred_by_code,
        referred_at=ts(found.referred_at),
        referral_converted=found.converted,
        referred_customer_ids=found.referred,
        referrals_converted=found.referrals_converted,
        rewards=[
            pb.Customer360Reward(
                reward_id=w.reward_id,
                referral_id=w.referral_id,
                kind=w.kind,
                points=w.points,
                coupon_template_id=w.coupon_template_id,
                level=w.level,
                granted_at=ts(w.granted_at),
                revoked_at=ts(w.revoked_at),
            )
            for w in found.rewards
        ],
    )


def customer360_to_pb(found: Customer360) -> pb.GetCustomer360Response:
    who, activity = found.who, found.activity
    stage = STAGE_PB[activity.activity.stage] if activity else ev.LIFECYCLE_STAGE_UNSPECIFIED
    return pb.GetCustomer360Response(
        customer_id=who.customer_id,
        requested_id=who.requested_id,
        merged_ids=list(who.merged_ids),
        identities=[identity_to_pb(i) for i in who.identities],
        activity=activity_to_pb(activity) if activity else None,
        stage=stage,
        stage_reason=found.stage_reason,
        value=value_to_pb(found.value) if found.value else None,
        points_balance=found.account.balance,
        lifetime_points=found.account.lifetime_points,
        tier=tier_to_pb(found.account.tier),
        owner_rep_id=found.owner_rep_id,
        leads=[
            pb.Customer360Lead(
                lead_id=lead.lead_id,
                campaign_id=lead.campaign_id,
                channel_id=lead.channel_id,
                channel_kind=lead.channel_kind,
                captured_at=ts(lead.captured_at),
                referrer_customer_id=lead.referrer_customer_id,
                referral_code=lead.referral_code,
                rep_id=lead.rep_id,
                assigned_at=ts(lead.assigned_at),
            )
            for lead in found.leads
        ],
        follow_ups=[
            pb.Customer360FollowUp(
                follow_up_id=f.follow_up_id,
                lead_id=f.lead_id,
                rep_id=f.rep_id,
                kind=f.kind,
                inbound=f.inbound,
                at=ts(f.at),
            )
            for f in found.follow_ups
        ],
        orders=[
            pb.Customer360Order(
                order_id=o.order_id,
                rep_id=o.rep_id,
                lead_id=o.lead_id,
                amount=c.Money(currency=o.currency, amount_minor=o.amount_minor),
                refunded=c.Money(currency=o.currency, amount_minor=o.refunded_minor),
                fully_refunded=o.fully_refunded,
                paid_at=ts(o.paid_at),
            )
            for o in found.orders
        ],
        referral=_referral_to_pb(found.referral),
        timeline=[
            pb.Customer360Event(kind=e.kind, at=ts(e.at), service=e.service, summary=e.summary)
            for e in found.timeline
        ],
    )
