"""What the referrals concept hands to transports: plain values, never rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from closedloop_referral.rewards.views import RewardView


@dataclass(frozen=True)
class ReferralView:
    id: str
    tenant_id: str
    program_id: str
    referrer_id: str
    newcomer_id: str
    code: str
    visit_id: str
    lead_id: str
    status: str
    flag_reason: str
    order_id: str
    created_at: datetime
    converted_at: datetime | None


@dataclass(frozen=True)
class LedgerEntryView:
    id: str
    referral_id: str
    reward_id: str
    from_status: str
    to_status: str
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class ReferralDetails:
    referral: ReferralView
    rewards: list[RewardView]
    ledger: list[LedgerEntryView]
