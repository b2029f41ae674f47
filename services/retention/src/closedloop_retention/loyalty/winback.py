"""The win-back playbook: recover the valuable, let go of the rest."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.activity.rules import Rules
from closedloop_retention.loyalty.service import LoyaltyService
from closedloop_retention.models import ActivityRow

if TYPE_CHECKING:
    from closedloop_retention.winback.service import WinBackService

WIN_BACK_TEMPLATE = "win-back"


def win_back(loyalty: LoyaltyService, offers: WinBackService | None = None):  # type: ignore[no-untyped-def]
    """When churn risk is raised for a valuable customer (top 20% or a repeat buyer), offer them
    a win-back coupon (coupon.issued) and record the offer (win_back.offered: the dispatcher
    sends it, conversion gives the owner rep a task); others are let go."""

    async def play(
        session: AsyncSession, tenant: str, row: ActivityRow, rules: Rules, now: datetime
    ) -> bool:
        if not (row.top_customer or row.order_count >= rules.stable_min_orders):
            return False
        key = f"winback:{row.customer_id}:{now.date().isoformat()}"
        coupon = await loyalty.issue_coupon(
            session,
            tenant,
            row.customer_id,
            template_id=WIN_BACK_TEMPLATE,
            value_minor=max(row.revenue_minor // max(row.order_count, 1) // 10, 0),
            valid_days=rules.win_back_valid_days,
            reason="win-back: churn risk raised",
            key=key,
            at=now,
        )
        if offers is not None:
            await offers.offer(
                session,
                tenant,
                row.customer_id,
                coupon=coupon,
                owner_rep_id=row.owner_rep_id or "",
                attempt=(row.win_back_attempts or 0) + 1,
                key=key,
                now=now,
            )
        return True

    return play
