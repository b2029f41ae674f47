"""Business metrics of the referral service. Counts made inside a unit of work wait for its
commit (`loopkit.uow.on_commit`): a retried or rolled-back transaction counts nothing twice."""

from __future__ import annotations

from opentelemetry import metrics
from sqlalchemy.ext.asyncio import AsyncSession

from loopkit.uow import on_commit

_meter = metrics.get_meter("closedloop.referral")
share_visits = _meter.create_counter(
    "closedloop_share_visits", unit="{visit}", description="Share links opened, by program state"
)
referrals_converted = _meter.create_counter(
    "closedloop_referrals_converted",
    unit="{referral}",
    description="Referred newcomers who paid their first order",
)
rewards_granted = _meter.create_counter(
    "closedloop_rewards_granted", unit="{reward}", description="Referral rewards granted, by kind"
)


def start() -> None:
    """Export every series from the start, so dashboards show 0 rather than no data."""
    share_visits.add(0, {"program": "active"})
    share_visits.add(0, {"program": "inactive"})
    referrals_converted.add(0)
    rewards_granted.add(0, {"kind": "points"})


def visit(active: bool) -> None:
    """Counted by the share-link route after its unit of work committed."""
    share_visits.add(1, {"program": "active" if active else "inactive"})


def converted(session: AsyncSession) -> None:
    on_commit(session, lambda: referrals_converted.add(1))


def granted(session: AsyncSession, kind: str) -> None:
    on_commit(session, lambda: rewards_granted.add(1, {"kind": kind}))
