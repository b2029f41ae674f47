"""Per-tenant rules with sane defaults, stored as one JSON document per tenant."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.clock import now
from closedloop_retention.models import RulesRow
from loopkit.errors import InvalidArgument

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Tier:
    name: str
    threshold: int
    benefits: tuple[str, ...] = ()


DEFAULT_TIERS = (
    Tier("member", 0, ("points on every order",)),
    Tier("silver", 1_000, ("birthday coupon",)),
    Tier("gold", 5_000, ("free shipping", "birthday coupon")),
    Tier("diamond", 20_000, ("dedicated rep", "free shipping", "early access")),
)


@dataclass(frozen=True)
class Rules:
    expected_cycle_days: int = 30
    stable_min_orders: int = 2
    decline_factor: float = 1.5
    churn_after_days: int = 180
    points_per_yuan: float = 1.0
    tiers: tuple[Tier, ...] = field(default=DEFAULT_TIERS)
    cap_messages: int = 4
    cap_window_days: int = 30
    quiet_start: str = "22:00"
    quiet_end: str = "08:00"
    utc_offset_minutes: int = 480
    send_rate_per_second: float = 20.0
    churn_risk_threshold: float = 0.7
    # Win-back: offers (coupons valid this many days) before letting the customer go (churned).
    win_back_max_attempts: int = 2
    win_back_valid_days: int = 14

    def validate(self) -> Rules:
        checks: list[tuple[str, bool, str]] = [
            ("expected_cycle_days", self.expected_cycle_days >= 1, "must be at least 1"),
            ("stable_min_orders", self.stable_min_orders >= 2, "must be at least 2"),
            ("decline_factor", self.decline_factor >= 1.0, "must be at least 1.0"),
            ("churn_after_days", self.churn_after_days >= 1, "must be at least 1"),
            ("points_per_yuan", self.points_per_yuan >= 0, "must not be negative"),
            ("cap_messages", self.cap_messages >= 0, "must not be negative"),
            ("cap_window_days", self.cap_window_days >= 1, "must be at least 1"),
            ("quiet_start", bool(_HHMM.match(self.quiet_start)), "must be HH:MM"),
            ("quiet_end", bool(_HHMM.match(self.quiet_end)), "must be HH:MM"),
            (
                "utc_offset_minutes",
                -720 <= self.utc_offset_minutes <= 840,
                "must be within -720..840",
            ),
            ("send_rate_per_second", self.send_rate_per_second > 0, "must be positive"),
            (
                "churn_risk_threshold",
                0 < self.churn_risk_threshold <= 1,
                "must be within (0, 1]",
            ),
            ("win_back_max_attempts", self.win_back_max_attempts >= 1, "must be at least 1"),
            ("win_back_valid_days", self.win_back_valid_days >= 1, "must be at least 1"),
        ]
        for name, ok, reason in checks:
            if not ok:
                raise InvalidArgument(reason, field=f"rules.{name}")
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names) or any(not n for n in names):
            raise InvalidArgument("tier names must be unique and non-empty", field="rules.tiers")
        if any(t.threshold < 0 for t in self.tiers):
            raise InvalidArgument("tier thresholds must not be negative", field="rules.tiers")
        return self

    def tier_for(self, lifetime_points: int) -> Tier | None:
        best: Tier | None = None
        for tier in sorted(self.tiers, key=lambda t: t.threshold):
            if lifetime_points >= tier.threshold:
                best = tier
        return best

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["tiers"] = [
            {"name": t.name, "threshold": t.threshold, "benefits": list(t.benefits)}
            for t in self.tiers
        ]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Rules:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known and k != "tiers"}
        rules = cls(**values)
        if "tiers" in data:
            tiers = tuple(
                Tier(t["name"], int(t["threshold"]), tuple(t.get("benefits", ())))
                for t in data["tiers"]
            )
            rules = replace(rules, tiers=tiers)
        return rules

    def updated(self, changes: dict[str, Any]) -> Rules:
        known = {f.name for f in fields(Rules)}
        for key in changes:
            if key not in known:
                raise InvalidArgument(f"unknown rule {key!r}", field="fields")
        return replace(self, **changes).validate()


class RulesRepository:
    async def get(self, session: AsyncSession, tenant_id: str) -> Rules:
        row = await session.get(RulesRow, tenant_id)
        return Rules() if row is None else Rules.from_json(row.rules)

    async def put(self, session: AsyncSession, tenant_id: str, rules: Rules) -> Rules:
        row = await session.get(RulesRow, tenant_id)
        if row is None:
            session.add(RulesRow(tenant_id=tenant_id, rules=rules.to_json(), updated_at=now()))
        else:
            row.rules = rules.to_json()
            row.updated_at = now()
        await session.flush()
        return rules

    async def want_review(self, session: AsyncSession, tenant_id: str, at: datetime) -> None:
        """Every customer is to be reviewed under the (stored) rules, from the first: a review
        under way starts over."""
        row = await session.get(RulesRow, tenant_id)
        assert row is not None, "the rules are stored first"
        row.review_wanted_at, row.review_after = at, ""
        await session.flush()

    async def reviews_wanted(self, session: AsyncSession) -> list[str]:
        """The tenants whose customers wait for a full review."""
        query = select(RulesRow.tenant_id).where(RulesRow.review_wanted_at.is_not(None))
        return list(await session.scalars(query.order_by(RulesRow.tenant_id)))

    async def claim_review(self, session: AsyncSession, tenant_id: str) -> RulesRow | None:
        """The tenant's rules row while a full review is wanted, locked to the end of the
        transaction; None when none is wanted or another process holds it (PostgreSQL: SKIP
        LOCKED; a rules change waits for the batch under way)."""
        row = await session.scalar(
            select(RulesRow)
            .where(RulesRow.tenant_id == tenant_id, RulesRow.review_wanted_at.is_not(None))
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        return row
