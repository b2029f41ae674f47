"""What the funnel use cases hand out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Step(StrEnum):
    """The TLSRRR steps, as stored in funnel_steps.step (docs: "Funnel definitions")."""

    EXPOSED = "exposed"
    LEAD = "lead"
    ASSIGNED = "assigned"
    FIRST_PAID = "first_paid"
    REPEAT = "repeat"
    REFERRER = "referrer"
    REFERRED = "referred"
    REFERRED_PAID = "referred_paid"


class Granularity(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


# (earlier step, later step) pairs whose median time apart GetFunnel reports.
MEDIAN_PAIRS: tuple[tuple[Step, Step], ...] = (
    (Step.EXPOSED, Step.LEAD),
    (Step.LEAD, Step.ASSIGNED),
    (Step.ASSIGNED, Step.FIRST_PAID),
    (Step.FIRST_PAID, Step.REPEAT),
)


@dataclass(frozen=True)
class FunnelQuery:
    tenant_id: str
    start: datetime
    end: datetime
    granularity: Granularity = Granularity.DAY
    campaign_id: str = ""
    channel_id: str = ""


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


@dataclass(frozen=True)
class FunnelPeriod:
    start: datetime
    # Unique customers per step (Step value -> count); missing steps are 0.
    customers: dict[str, int] = field(default_factory=dict)
    paid_orders: int = 0
    # Median seconds between the pair's steps, keyed by the later step.
    median_s: dict[str, float] = field(default_factory=dict)

    def count(self, step: Step) -> int:
        return self.customers.get(step.value, 0)

    def rate(self, earlier: Step, later: Step) -> float:
        return _ratio(self.count(later), self.count(earlier))

    @property
    def referral_share_of_leads(self) -> float:
        return self.rate(Step.LEAD, Step.REFERRED)

    @property
    def viral_coefficient(self) -> float:
        """Referred newcomers per new paying customer of the same period."""
        return self.rate(Step.FIRST_PAID, Step.REFERRED)


@dataclass(frozen=True)
class Funnel:
    periods: list[FunnelPeriod]
    total: FunnelPeriod
