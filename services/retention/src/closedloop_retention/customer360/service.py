"""The customer 360: the one read that puts a customer's leads, follow-ups, orders, referral
position and timeline (fed by `intake`) together with retention's own activity, lifecycle, value
and loyalty (through those concepts' services, never their tables), under the id identity keeps
for them; and what merges and erasure do to the 360's rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.activity.service import ActivityService
from closedloop_retention.clock import utc, utc_or_none
from closedloop_retention.customer360.intake import Customer360Intake
from closedloop_retention.customer360.repository import Customer360Repository
from closedloop_retention.customer360.views import (
    Customer360,
    FollowUpView,
    LeadView,
    OrderView,
    ReferralPosition,
    RewardView,
    TimelineEntry,
)
from closedloop_retention.loyalty.service import LoyaltyService
from closedloop_retention.models import C360LeadRow
from loopkit.customers import CustomerLookup, KnownCustomer
from loopkit.errors import NotFound

# Lists other than the timeline show at most this many (the latest).
LIST_LIMIT = 100


class Customer360Service:
    def __init__(
        self,
        repo: Customer360Repository,
        *,
        activity: ActivityService,
        loyalty: LoyaltyService,
        directory: CustomerLookup,
    ) -> None:
        self._repo = repo
        self.intake = Customer360Intake(repo)
        self._activity = activity
        self._loyalty = loyalty
        self._directory = directory

    async def merge(
        self, session: AsyncSession, tenant: str, survivor: str, gone: str, *, merge_id: str = ""
    ) -> None:
        """Rows move to the survivor, logged under `merge_id` so an unmerge gives them back."""
        if survivor != gone:
            await self._repo.merge(session, tenant, survivor, gone, merge_id=merge_id)

    async def forget(
        self, session: AsyncSession, tenant: str, ids: list[str], at: datetime
    ) -> None:
        """Erases their rows; events of theirs arriving later add nothing (the intake checks)."""
        await self._repo.erase(session, tenant, ids, at)

    # --- the read -------------------------------------------------------------------------------

    async def identify(self, tenant: str, customer: str) -> KnownCustomer:
        """Who the id stands for today, from identity (outside any transaction: a network call).
        NotFound for an unknown or forgotten customer, DependencyUnavailable while it is out."""
        return await self._directory.customer(tenant, customer)

    async def view(
        self, session: AsyncSession, tenant: str, who: KnownCustomer, timeline_limit: int
    ) -> Customer360:
        customer = who.customer_id
        ids = [customer, *who.merged_ids]
        try:
            activity = await self._activity.activity_of(session, tenant, customer)
            lifecycle = await self._activity.lifecycle_of(session, tenant, customer)
            value = await self._activity.value_of(session, tenant, customer)
        except NotFound:  # known to identity, no event of theirs reached retention yet
            activity, lifecycle, value = None, None, None
        account = await self._loyalty.account_of(session, tenant, customer, 1)
        leads = [_lead(r) for r in await self._repo.leads(session, tenant, ids)]
        timeline = [
            TimelineEntry(r.kind, utc(r.at), r.service, r.summary)
            for r in await self._repo.timeline(session, tenant, ids, timeline_limit)
        ]
        if lifecycle is not None:
            timeline += [
                TimelineEntry(
                    "stage.changed",
                    utc(h.at),
                    "retention",
                    f"{h.from_stage or 'new'} -> {h.to_stage}: {h.reason}",
                )
                for h in lifecycle.history
            ]
        timeline.sort(key=lambda e: e.at)
        owner = activity.activity.owner_rep_id if activity else ""
        assigned = sorted((lead.assigned_at, lead.rep_id) for lead in leads if lead.assigned_at)
        if not owner and assigned:
            owner = assigned[-1][1]
        return Customer360(
            who=who,
            activity=activity,
            stage_reason=lifecycle.reason if lifecycle else "",
            value=value,
            account=account,
            owner_rep_id=owner,
            leads=leads,
            follow_ups=[
                FollowUpView(f.follow_up_id, f.lead_id, f.rep_id, f.kind, f.inbound, utc(f.at))
                for f in await self._repo.followups(session, tenant, ids, LIST_LIMIT)
            ],
            orders=[
                OrderView(
                    o.order_id,
                    o.rep_id,
                    o.lead_id,
                    o.currency,
                    o.amount_minor,
                    o.refunded_minor,
                    o.fully_refunded,
                    utc(o.paid_at),
                )
                for o in await self._repo.orders(session, tenant, ids, LIST_LIMIT)
            ],
            referral=await self._referral(session, tenant, ids),
            timeline=timeline[-timeline_limit:],
        )

    async def _referral(
        self, session: AsyncSession, tenant: str, ids: list[str]
    ) -> ReferralPosition:
        by = await self._repo.referred_by(session, tenant, ids)
        made = await self._repo.referrals_made(session, tenant, ids, LIST_LIMIT)
        codes = dict.fromkeys(
            [
                *await self._repo.shared_codes(session, tenant, ids),
                *(r.code for r in made if r.code),
            ]
        )
        return ReferralPosition(
            codes=list(codes),
            referred_by=by.referrer_id if by else "",
            referred_by_code=by.code if by else "",
            referred_at=utc(by.referred_at) if by else None,
            converted=bool(by and by.converted_at),
            referred=[r.newcomer_id for r in made],
            referrals_converted=sum(1 for r in made if r.converted_at),
            rewards=[
                RewardView(
                    w.reward_id,
                    w.referral_id,
                    w.kind,
                    w.points,
                    w.coupon_template_id,
                    w.level,
                    utc_or_none(w.granted_at),
                    utc_or_none(w.revoked_at),
                )
                for w in await self._repo.rewards(session, tenant, ids, LIST_LIMIT)
            ],
        )


def _lead(r: C360LeadRow) -> LeadView:
    return LeadView(
        r.lead_id,
        r.campaign_id,
        r.channel_id,
        r.channel_kind,
        utc_or_none(r.captured_at),
        r.referrer_customer_id,
        r.referral_code,
        r.rep_id,
        utc_or_none(r.assigned_at),
    )
