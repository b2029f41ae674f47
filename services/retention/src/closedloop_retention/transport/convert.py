"""Views and domain values to and from protobuf messages."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.message import Message

from closedloop.events.v1 import retention_events_pb2 as ev
from closedloop.retention.v1 import retention_pb2 as pb
from closedloop_retention.activity.rules import Rules, Tier
from closedloop_retention.activity.service import STAGE_PB
from closedloop_retention.activity.views import CustomerActivity, StageChangeView, ValueView
from closedloop_retention.broadcasts.views import Broadcast, RecipientView
from closedloop_retention.clock import now, utc
from closedloop_retention.funnel.views import (
    Funnel,
    FunnelPeriod,
    FunnelQuery,
    Granularity,
    Step,
)
from closedloop_retention.loyalty.views import CouponView, LedgerEntryView
from loopkit.errors import InvalidArgument
from loopkit.timestamps import ts as ts  # shared; re-exported

RECIPIENT_STATUS = {
    "scheduled": pb.RECIPIENT_STATUS_SCHEDULED,
    "sending": pb.RECIPIENT_STATUS_SCHEDULED,
    "sent": pb.RECIPIENT_STATUS_SENT,
    "skipped": pb.RECIPIENT_STATUS_SKIPPED,
    "failed": pb.RECIPIENT_STATUS_FAILED,
}
BROADCAST_STATUS = {
    "scheduled": pb.BROADCAST_STATUS_SCHEDULED,
    "sending": pb.BROADCAST_STATUS_SENDING,
    "completed": pb.BROADCAST_STATUS_COMPLETED,
}
RULE_FIELDS = [f.name for f in pb.LifecycleRules.DESCRIPTOR.fields]


def as_of(request: Message) -> datetime:
    """The request's `as_of` (the injectable clock), else now."""
    if request.HasField("as_of"):
        return request.as_of.ToDatetime(tzinfo=UTC)  # type: ignore[attr-defined,no-any-return]
    return now()


def activity_to_pb(found: CustomerActivity) -> pb.CustomerActivity:
    row = found.activity
    return pb.CustomerActivity(
        customer_id=row.customer_id,
        first_seen_at=ts(row.first_seen_at),
        last_seen_at=ts(row.last_seen_at),
        order_count=row.order_count,
        revenue_minor=row.revenue_minor,
        first_order_at=ts(row.first_order_at),
        last_order_at=ts(row.last_order_at),
        last_interaction_at=ts(row.last_interaction_at),
        referrals_made=row.referrals_made,
        unsubscribed=row.unsubscribed,
        deleted_rep=row.deleted_rep,
        consent=row.consent,
        channel_id=row.channel_id,
        channel_kind=row.channel_kind,
        owner_rep_id=row.owner_rep_id,
        stage=STAGE_PB[row.stage],
        tags=found.tags,
        purchase_cycle_days=found.purchase_cycle_days,
    )


def change_to_pb(row: StageChangeView) -> pb.StageChange:
    return pb.StageChange(
        from_stage=STAGE_PB.get(row.from_stage, ev.LIFECYCLE_STAGE_UNSPECIFIED),
        to_stage=STAGE_PB[row.to_stage],
        reason=row.reason,
        changed_at=ts(row.at),
    )


def tier_to_pb(tier: Tier | None) -> pb.Tier | None:
    if tier is None:
        return None
    return pb.Tier(name=tier.name, threshold=tier.threshold, benefits=list(tier.benefits))


def rules_to_pb(rules: Rules) -> pb.LifecycleRules:
    return pb.LifecycleRules(
        expected_cycle_days=rules.expected_cycle_days,
        stable_min_orders=rules.stable_min_orders,
        decline_factor=rules.decline_factor,
        churn_after_days=rules.churn_after_days,
        points_per_yuan=rules.points_per_yuan,
        tiers=[
            pb.Tier(name=t.name, threshold=t.threshold, benefits=list(t.benefits))
            for t in rules.tiers
        ],
        cap_messages=rules.cap_messages,
        cap_window_days=rules.cap_window_days,
        quiet_start=rules.quiet_start,
        quiet_end=rules.quiet_end,
        utc_offset_minutes=rules.utc_offset_minutes,
        send_rate_per_second=rules.send_rate_per_second,
        churn_risk_threshold=rules.churn_risk_threshold,
        win_back_max_attempts=rules.win_back_max_attempts,
        win_back_valid_days=rules.win_back_valid_days,
    )


def rule_changes(msg: pb.LifecycleRules, fields: list[str]) -> dict[str, object]:
    """The fields to set: those named, or every field with a non-default value."""
    from closedloop_retention.activity.rules import Tier as TierValue
    from loopkit.errors import InvalidArgument

    for name in fields:
        if name not in RULE_FIELDS:
            raise InvalidArgument(f"unknown rule {name!r}", field="fields")
    chosen = fields or [
        f.name
        for f in pb.LifecycleRules.DESCRIPTOR.fields
        if (len(getattr(msg, f.name)) if f.name == "tiers" else getattr(msg, f.name))
    ]
    changes: dict[str, object] = {}
    for name in chosen:
        if name == "tiers":
            changes[name] = tuple(
                TierValue(t.name, t.threshold, tuple(t.benefits)) for t in msg.tiers
            )
        else:
            changes[name] = getattr(msg, name)
    return changes


def ledger_to_pb(row: LedgerEntryView) -> pb.LedgerEntry:
    return pb.LedgerEntry(
        entry_id=row.id,
        points=row.points,
        source=row.source,
        source_ref=row.source_ref,
        reason=row.reason,
        created_at=ts(row.created_at),
    )


def coupon_to_pb(row: CouponView, at: datetime | None = None) -> pb.Coupon:
    if row.redeemed_at is not None:
        status = pb.COUPON_STATUS_REDEEMED
    elif row.revoked_at is not None:
        status = pb.COUPON_STATUS_REVOKED
    elif utc(row.expires_at) <= utc(at or now()):
        status = pb.COUPON_STATUS_EXPIRED
    else:
        status = pb.COUPON_STATUS_ISSUED
    return pb.Coupon(
        coupon_id=row.id,
        customer_id=row.customer_id,
        template_id=row.template_id,
        value_minor=row.value_minor,
        status=status,
        issued_at=ts(row.issued_at),
        expires_at=ts(row.expires_at),
        redeemed_at=ts(row.redeemed_at),
        reason=row.reason,
        revoked_at=ts(row.revoked_at),
    )


def value_to_pb(row: ValueView) -> pb.CustomerValue:
    return pb.CustomerValue(
        customer_id=row.customer_id,
        recency=row.rfm_r,
        frequency=row.rfm_f,
        monetary=row.rfm_m,
        rfm_score=row.rfm_score,
        top_customer=row.top_customer,
        revenue_minor=row.revenue_minor,
        order_count=row.order_count,
        churn_risk=row.churn_risk,
    )


def broadcast_to_pb(found: Broadcast) -> pb.Broadcast:
    row, stats = found.broadcast, found.stats
    return pb.Broadcast(
        broadcast_id=row.id,
        segment_id=row.segment_id,
        expression=row.expression,
        template=row.template,
        window_start=ts(row.window_start),
        window_end=ts(row.window_end),
        status=BROADCAST_STATUS[row.status],
        stats=pb.BroadcastStats(
            recipients=stats.recipients,
            scheduled=stats.scheduled,
            sent=stats.sent,
            skipped=stats.skipped,
            failed=stats.failed,
            by_reason=stats.by_reason,
            delivered=stats.delivered,
            delivery_failed=stats.delivery_failed,
        ),
        created_at=ts(row.created_at),
        wechat_template_id=row.wechat_template_id,
        wechat_template_data=row.wechat_template_data,
    )


DELIVERY = {
    "delivered": pb.DELIVERY_STATUS_DELIVERED,
    "failed": pb.DELIVERY_STATUS_FAILED,
}


def delivery_to_pb(sent: bool, delivery: str) -> pb.DeliveryStatus:
    if not sent:
        return pb.DELIVERY_STATUS_UNSPECIFIED
    return DELIVERY.get(delivery, pb.DELIVERY_STATUS_PENDING)


def recipient_to_pb(row: RecipientView) -> pb.Recipient:
    return pb.Recipient(
        customer_id=row.customer_id,
        status=RECIPIENT_STATUS[row.status],
        reason=row.reason,
        send_at=ts(row.send_at),
        sent_at=ts(row.sent_at),
        message_id=row.message_id,
        delivery=delivery_to_pb(row.status == "sent", row.delivery),
        delivery_errcode=row.delivery_errcode,
    )


# --- the funnel ---------------------------------------------------------------------------------

_GRANULARITY = {
    pb.FUNNEL_GRANULARITY_UNSPECIFIED: Granularity.DAY,
    pb.FUNNEL_GRANULARITY_DAY: Granularity.DAY,
    pb.FUNNEL_GRANULARITY_WEEK: Granularity.WEEK,
    pb.FUNNEL_GRANULARITY_MONTH: Granularity.MONTH,
}


def funnel_query(
    tenant: str, request: pb.GetFunnelRequest | pb.GetFunnelCohortsRequest
) -> FunnelQuery:
    if not request.HasField("from") or not request.HasField("to"):
        raise InvalidArgument("`from` and `to` are required", field="from")
    if isinstance(request, pb.GetFunnelRequest):
        grain = _GRANULARITY.get(request.granularity)
    else:
        grain = Granularity.WEEK  # cohorts are weekly
    if grain is None:
        raise InvalidArgument("must be day, week or month", field="granularity")
    for name in ("campaign_id", "channel_id"):
        if len(getattr(request, name)) > 64:
            raise InvalidArgument("at most 64 characters", field=name)
    return FunnelQuery(
        tenant_id=tenant,
        start=getattr(request, "from").ToDatetime(tzinfo=UTC),
        end=request.to.ToDatetime(tzinfo=UTC),
        granularity=grain,
        campaign_id=request.campaign_id,
        channel_id=request.channel_id,
    )


def _steps_to_pb(p: FunnelPeriod) -> pb.FunnelSteps:
    return pb.FunnelSteps(
        exposed=p.count(Step.EXPOSED),
        leads=p.count(Step.LEAD),
        assigned=p.count(Step.ASSIGNED),
        first_paid=p.count(Step.FIRST_PAID),
        repeat_buyers=p.count(Step.REPEAT),
        referrers=p.count(Step.REFERRER),
        referred_newcomers=p.count(Step.REFERRED),
        referred_paid=p.count(Step.REFERRED_PAID),
        paid_orders=p.paid_orders,
    )


def _rates_to_pb(p: FunnelPeriod) -> pb.FunnelRates:
    return pb.FunnelRates(
        exposed_to_lead=p.rate(Step.EXPOSED, Step.LEAD),
        lead_to_assigned=p.rate(Step.LEAD, Step.ASSIGNED),
        assigned_to_first_paid=p.rate(Step.ASSIGNED, Step.FIRST_PAID),
        first_paid_to_repeat=p.rate(Step.FIRST_PAID, Step.REPEAT),
        referred_to_paid=p.rate(Step.REFERRED, Step.REFERRED_PAID),
        referral_share_of_leads=p.referral_share_of_leads,
        viral_coefficient=p.viral_coefficient,
    )


def _funnel_period_to_pb(p: FunnelPeriod) -> pb.FunnelPeriod:
    return pb.FunnelPeriod(
        start=ts(p.start),
        steps=_steps_to_pb(p),
        rates=_rates_to_pb(p),
        medians=pb.FunnelMedians(
            exposed_to_lead_s=p.median_s.get(Step.LEAD.value, 0.0),
            lead_to_assigned_s=p.median_s.get(Step.ASSIGNED.value, 0.0),
            assigned_to_first_paid_s=p.median_s.get(Step.FIRST_PAID.value, 0.0),
            first_paid_to_repeat_s=p.median_s.get(Step.REPEAT.value, 0.0),
        ),
    )


def funnel_to_pb(found: Funnel) -> pb.GetFunnelResponse:
    return pb.GetFunnelResponse(
        periods=[_funnel_period_to_pb(p) for p in found.periods],
        total=_funnel_period_to_pb(found.total),
    )


def cohorts_to_pb(found: list[FunnelPeriod]) -> pb.GetFunnelCohortsResponse:
    return pb.GetFunnelCohortsResponse(
        cohorts=[
            pb.FunnelCohort(week=ts(c.start), steps=_steps_to_pb(c), rates=_rates_to_pb(c))
            for c in found
        ]
    )
