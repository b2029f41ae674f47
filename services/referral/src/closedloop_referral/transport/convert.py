"""Conversions between the referral domain and its protobuf messages."""

from __future__ import annotations

from closedloop.common.v1 import common_pb2
from closedloop.events.v1 import referral_events_pb2 as ev
from closedloop.referral.v1 import referral_pb2 as pb
from closedloop_referral.programs.model import (
    DEFAULT_ATTRIBUTION_WINDOW_S,
    ProgramSpec,
    RewardSpec,
)
from closedloop_referral.programs.views import ProgramView
from closedloop_referral.referrals.views import LedgerEntryView, ReferralView
from closedloop_referral.rewards.views import RewardView
from closedloop_referral.stats.service import TreeNode
from loopkit.errors import InvalidArgument
from loopkit.timestamps import from_ts as from_ts  # shared; re-exported
from loopkit.timestamps import ts as ts

KIND_NAMES = {
    ev.REWARD_KIND_POINTS: "points",
    ev.REWARD_KIND_COUPON: "coupon",
    ev.REWARD_KIND_CASH: "cash",
}
KIND_VALUES = {v: k for k, v in KIND_NAMES.items()}
TRIGGER_NAMES = {
    pb.REWARD_TRIGGER_LEAD: "lead",
    pb.REWARD_TRIGGER_FIRST_PAID_ORDER: "first_paid_order",
    pb.REWARD_TRIGGER_ORDER_ABOVE_AMOUNT: "order_above_amount",
}
TRIGGER_VALUES = {v: k for k, v in TRIGGER_NAMES.items()}
TARGET_NAMES = {
    ev.SHARE_TARGET_MOMENT: "moment",
    ev.SHARE_TARGET_CHAT: "chat",
    ev.SHARE_TARGET_GROUP: "group",
}
REFERRAL_STATUS = {
    "approved": pb.REFERRAL_STATUS_APPROVED,
    "flagged": pb.REFERRAL_STATUS_FLAGGED,
    "rejected": pb.REFERRAL_STATUS_REJECTED,
    "voided": pb.REFERRAL_STATUS_VOIDED,
}
REFERRAL_STATUS_NAMES = {v: k for k, v in REFERRAL_STATUS.items()}
REWARD_STATUS = {
    "pending": pb.REWARD_STATUS_PENDING,
    "flagged": pb.REWARD_STATUS_FLAGGED,
    "approved": pb.REWARD_STATUS_APPROVED,
    "granted": pb.REWARD_STATUS_GRANTED,
    "voided": pb.REWARD_STATUS_VOIDED,
}
# The retired HELD / REVOKED still filter as what they became (migration 0002).
REWARD_STATUS_NAMES = {
    **{v: k for k, v in REWARD_STATUS.items()},
    pb.REWARD_STATUS_HELD: "pending",
    pb.REWARD_STATUS_REVOKED: "voided",
}


def reward_spec(msg: pb.Reward, currency: str) -> RewardSpec:
    if msg.kind and msg.kind not in KIND_NAMES:
        raise InvalidArgument("unknown reward kind", field="kind")
    if msg.cash.currency and currency and msg.cash.currency.upper() != currency.upper():
        raise InvalidArgument("one currency per program", field="cash.currency")
    return RewardSpec(
        kind=KIND_NAMES.get(msg.kind, ""),
        points=msg.points,
        coupon_template_id=msg.coupon_template_id[:64] if msg.coupon_template_id else "",
        cash_minor=msg.cash.amount_minor,
    )


def program_spec(tenant_id: str, p: pb.Program) -> ProgramSpec:
    currency = p.min_order_amount.currency or p.referrer_reward.cash.currency or "CNY"
    if p.trigger not in TRIGGER_NAMES:
        raise InvalidArgument("a trigger is required", field="trigger")
    return ProgramSpec(
        tenant_id=tenant_id,
        name=p.name,
        referrer_reward=reward_spec(p.referrer_reward, currency),
        trigger=TRIGGER_NAMES[p.trigger],
        min_order_minor=p.min_order_amount.amount_minor,
        currency=currency,
        newcomer_reward=reward_spec(p.newcomer_reward, currency),
        cap_per_period=p.cap_per_period,
        cap_period_days=p.cap_period_days,
        levels=p.levels or 1,
        level2_percent=p.level2_percent,
        hold_seconds=p.hold_seconds,
        attribution_window_seconds=p.attribution_window_seconds or DEFAULT_ATTRIBUTION_WINDOW_S,
        channel_id=p.channel_id,
        campaign_id=p.campaign_id,
        landing_url=p.landing_url,
        starts_at=from_ts(p.starts_at, p.HasField("starts_at")),
        ends_at=from_ts(p.ends_at, p.HasField("ends_at")),
    )


def _reward(kind: str, points: int, coupon: str, cash_minor: int, currency: str) -> pb.Reward:
    if not kind:
        return pb.Reward()
    return pb.Reward(
        kind=KIND_VALUES[kind],
        points=points,
        coupon_template_id=coupon,
        cash=common_pb2.Money(currency=currency, amount_minor=cash_minor)
        if kind == "cash"
        else None,
    )


def program_to_pb(row: ProgramView) -> pb.Program:
    return pb.Program(
        program_id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        referrer_reward=_reward(
            row.referrer_kind,
            row.referrer_points,
            row.referrer_coupon,
            row.referrer_cash_minor,
            row.currency,
        ),
        trigger=TRIGGER_VALUES[row.trigger],
        min_order_amount=common_pb2.Money(currency=row.currency, amount_minor=row.min_order_minor),
        newcomer_reward=_reward(
            row.newcomer_kind,
            row.newcomer_points,
            row.newcomer_coupon,
            row.newcomer_cash_minor,
            row.currency,
        ),
        cap_per_period=row.cap_per_period,
        cap_period_days=row.cap_period_days,
        levels=row.levels,
        level2_percent=row.level2_percent,
        hold_seconds=row.hold_seconds,
        attribution_window_seconds=row.attribution_window_seconds,
        channel_id=row.channel_id,
        campaign_id=row.campaign_id,
        landing_url=row.landing_url,
        starts_at=ts(row.starts_at),
        ends_at=ts(row.ends_at),
        created_at=ts(row.created_at),
    )


def referral_to_pb(row: ReferralView) -> pb.Referral:
    return pb.Referral(
        referral_id=row.id,
        program_id=row.program_id,
        referrer_customer_id=row.referrer_id,
        newcomer_customer_id=row.newcomer_id,
        code=row.code,
        lead_id=row.lead_id,
        status=REFERRAL_STATUS[row.status],
        flag_reason=row.flag_reason,
        order_id=row.order_id,
        created_at=ts(row.created_at),
        converted_at=ts(row.converted_at),
        visit_id=row.visit_id,
    )


def reward_to_pb(row: RewardView) -> pb.RewardRecord:
    return pb.RewardRecord(
        reward_id=row.id,
        referral_id=row.referral_id,
        beneficiary_customer_id=row.beneficiary_id,
        level=row.level,
        reward=_reward(row.kind, row.points, row.coupon_template_id, row.cash_minor, row.currency),
        status=REWARD_STATUS[row.status],
        reason=row.reason,
        hold_until=ts(row.hold_until),
        granted_at=ts(row.granted_at),
        created_at=ts(row.created_at),
    )


def ledger_to_pb(row: LedgerEntryView) -> pb.LedgerEntry:
    return pb.LedgerEntry(
        entry_id=row.id,
        referral_id=row.referral_id,
        reward_id=row.reward_id,
        from_status=row.from_status,
        to_status=row.to_status,
        reason=row.reason,
        actor=row.actor,
        at=ts(row.at),
    )


def node_to_pb(node: TreeNode) -> pb.TreeNode:
    r = node.referral
    return pb.TreeNode(
        customer_id=node.customer_id,
        referrer_customer_id=node.referrer_id,
        depth=node.depth,
        referral_id=r.id if r else "",
        status=REFERRAL_STATUS[r.status] if r else pb.REFERRAL_STATUS_UNSPECIFIED,
        converted=bool(r and r.converted_at is not None),
    )
