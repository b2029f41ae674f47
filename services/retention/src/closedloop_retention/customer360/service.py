"""The customer 360: what each consumed event adds to a customer's leads, follow-ups, orders,
referral position and timeline, and the one read that puts it together with retention's own
activity, lifecycle, value and loyalty (through those concepts' services, never their tables).

Timeline summaries carry ids, channels, amounts and codes, never personal data (names, phones,
openids): the rows are erased with the customer, and the answer may go to a reporting caller."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.activity.service import ActivityService
from closedloop_retention.clock import utc, utc_or_none
from closedloop_retention.customer360.repository import Customer360Repository
from closedloop_retention.customer360.views import (
    Customer360,
    Entry,
    FollowUpView,
    LeadFacts,
    LeadView,
    OrderView,
    ReferralPosition,
    RewardView,
    TimelineEntry,
)
from closedloop_retention.loyalty.service import LoyaltyService
from closedloop_retention.models import C360FollowUpRow, C360LeadRow, C360OrderRow, C360RewardRow
from loopkit.customers import CustomerLookup, KnownCustomer
from loopkit.errors import NotFound

# Lists other than the timeline show at most this many (the latest).
LIST_LIMIT = 100


def _money(minor: int, currency: str) -> str:
    return f"{minor / 100:.2f} {currency}".strip()


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
        self._activity = activity
        self._loyalty = loyalty
        self._directory = directory

    # --- what each event adds ------------------------------------------------------------------

    async def touched(
        self,
        session: AsyncSession,
        tenant: str,
        customer: str,
        at: datetime,
        *,
        event_id: str,
        kind: str,
        channel_id: str,
    ) -> None:
        where = f" via channel {channel_id}" if channel_id else ""
        entry = Entry(event_id, "touch.recorded", "acquisition", at, f"{kind}{where}", channel_id)
        await self._repo.add_entry(session, tenant, customer, entry)

    async def lead_captured(
        self, session: AsyncSession, tenant: str, customer: str, at: datetime, lead: LeadFacts
    ) -> None:
        if lead.referrer_id == customer:
            lead = LeadFacts(lead.lead_id, lead.campaign_id, lead.channel_id, lead.channel_kind)
        await self._repo.lead_captured(session, tenant, customer, lead, at)
        summary = f"lead {lead.lead_id} via channel {lead.channel_id or '-'}"
        if lead.campaign_id:
            summary += f" (campaign {lead.campaign_id})"
        if lead.referrer_id:
            summary += f", referred with code {lead.referral_code or '-'}"
            await self._repo.referred(
                session, tenant, customer, lead.referrer_id, lead.referral_code, at
            )
        entry = Entry(
            f"lead.captured:{lead.lead_id}",
            "lead.captured",
            "acquisition",
            at,
            summary,
            lead.lead_id,
        )
        await self._repo.add_entry(session, tenant, customer, entry)

    async def interacted(
        self, session: AsyncSession, tenant: str, customer: str, at: datetime, event_id: str
    ) -> None:
        entry = Entry(
            event_id, "interaction.recorded", "acquisition", at, "message or menu click from them"
        )
        await self._repo.add_entry(session, tenant, customer, entry)

    async def lead_assigned(
        self,
        session: AsyncSession,
        tenant: str,
        customer: str,
        at: datetime,
        *,
        event_id: str,
        lead_id: str,
        rep_id: str,
        previous_rep_id: str = "",
    ) -> None:
        if lead_id:
            await self._repo.lead_assigned(session, tenant, customer, lead_id, rep_id, at)
        summary = f"lead {lead_id or '-'} assigned to {rep_id}"
        if previous_rep_id:
            summary += f" (was {previous_rep_id})"
        entry = Entry(event_id, "lead.assigned", "conversion", at, summary, lead_id)
        await self._repo.add_entry(session, tenant, customer, entry)

    async def followed_up(
        self,
        session: AsyncSession,
        tenant: str,
        customer: str,
        at: datetime,
        *,
        follow_up_id: str,
        lead_id: str,
        rep_id: str,
        kind: str,
        inbound: bool,
    ) -> None:
        row = C360FollowUpRow(
            tenant_id=tenant,
            follow_up_id=follow_up_id,
            customer_id=customer,
            lead_id=lead_id,
            rep_id=rep_id,
            kind=kind,
            inbound=inbound,
            at=utc(at),
        )
        await self._repo.add_followup(session, row)
        direction = "from the customer" if inbound else f"by {rep_id}"
        entry = Entry(
            f"followup.logged:{follow_up_id}",
            "followup.logged",
            "conversion",
            at,
            f"{kind or 'follow-up'} {direction}",
            follow_up_id,
        )
        await self._repo.add_entry(session, tenant, customer, entry)

    async def ownership(
        self,
        session: AsyncSession,
        tenant: str,
        customer: str,
        at: datetime,
        *,
        event_id: str,
        kind: str,
        summary: str,
    ) -> None:
        entry = Entry(event_id, kind, "conversion", at, summary)
        await self._repo.add_entry(session, tenant, customer, entry)

    async def order_paid(
        self,
        session: AsyncSession,
        tenant: str,
        customer: str,
        at: datetime,
        *,
        order_id: str,
        rep_id: str,
        lead_id: str,
        currency: str,
        amount_minor: int,
    ) -> None:
        row = C360OrderRow(
            tenant_id=tenant,
            order_id=order_id,
            customer_id=customer,
            rep_id=rep_id,
            lead_id=lead_id,
            currency=currency,
            amount_minor=amount_minor,
            refunded_minor=0,
            fully_refunded=False,
            paid_at=utc(at),
        )
        await self._repo.add_order(session, row)
        summary = f"order {order_id} paid, {_money(amount_minor, currency)}"
        if rep_id:
            summary += f" (rep {rep_id})"
        entry = Entry(f"order.paid:{order_id}", "order.paid", "conversion", at, summary, order_id)
        await self._repo.add_entry(session, tenant, customer, entry)

    async def order_refunded(
        self,
        session: AsyncSession,
        tenant: str,
        customer: str,
        at: datetime,
        *,
        event_id: str,
        order_id: str,
        refunded_minor: int,
        refunded_total_minor: int,
        currency: str,
        full: bool,
    ) -> None:
        await self._repo.refund_order(session, tenant, order_id, refunded_total_minor, full)
        what = "fully refunded" if full else "refunded"
        summary = f"order {order_id} {what}, {_money(refunded_minor, currency)}"
        entry = Entry(event_id, "order.refunded", "conversion", at, summary, order_id)
        await self._repo.add_entry(session, tenant, customer, entry)

    async def shared(
        self,
        session: AsyncSession,
        tenant: str,
        customer: str,
        at: datetime,
        *,
        share_id: str,
        code: str,
    ) -> None:
        entry = Entry(
            f"share.recorded:{share_id}",
            "share.recorded",
            "referral",
            at,
            f"shared their referral code {code}",
            code,
        )
        await self._repo.add_entry(session, tenant, customer, entry)

    async def referral_converted(
        self,
        session: AsyncSession,
        tenant: str,
        newcomer: str,
        at: datetime,
        *,
        referrer: str,
        referral_id: str,
    ) -> None:
        if newcomer and newcomer != referrer:
            await self._repo.referred(
                session, tenant, newcomer, referrer, "", at, referral_id=referral_id, converted=True
            )
            entry = Entry(
                f"referral.converted:{referral_id}",
                "referral.converted",
                "referral",
                at,
                f"their referral {referral_id} converted (first paid order)",
                referral_id,
            )
            await self._repo.add_entry(session, tenant, newcomer, entry)
        if referrer:
            entry = Entry(
                f"referral.converted:{referral_id}:referrer",
                "referral.converted",
                "referral",
                at,
                f"a newcomer they referred paid (referral {referral_id})",
                referral_id,
            )
            await self._repo.add_entry(session, tenant, referrer, entry)

    async def reward_granted(
        self,
        session: AsyncSession,
        tenant: str,
        customer: str,
        at: datetime,
        *,
        reward_id: str,
        referral_id: str,
        kind: str,
        points: int,
        coupon_template_id: str,
        level: int,
    ) -> None:
        row = C360RewardRow(
            tenant_id=tenant,
            reward_id=reward_id,
            customer_id=customer,
            referral_id=referral_id,
            kind=kind,
            points=points,
            coupon_template_id=coupon_template_id,
            level=level,
            granted_at=utc(at),
        )
        await self._repo.reward_granted(session, row)
        what = {"points": f"{points} points", "coupon": f"coupon {coupon_template_id}"}
        entry = Entry(
            f"reward.granted:{reward_id}",
            "reward.granted",
            "referral",
            at,
            f"referral reward: {what.get(kind, kind)} (level {level})",
            reward_id,
        )
        await self._repo.add_entry(session, tenant, customer, entry)

    async def reward_revoked(
        self,
        session: AsyncSession,
        tenant: str,
        customer: str,
        at: datetime,
        *,
        reward_id: str,
        kind: str,
        reason: str,
    ) -> None:
        await self._repo.reward_revoked(session, tenant, customer, reward_id, kind, at)
        entry = Entry(
            f"reward.revoked:{reward_id}",
            "reward.revoked",
            "referral",
            at,
            f"referral reward {reward_id} taken back ({reason or 'no reason given'})"[:300],
            reward_id,
        )
        await self._repo.add_entry(session, tenant, customer, entry)

    async def merge(self, session: AsyncSession, tenant: str, survivor: str, gone: str) -> None:
        if survivor != gone:
            await self._repo.merge(session, tenant, survivor, gone)

    async def forget(self, session: AsyncSession, tenant: str, ids: list[str]) -> None:
        await self._repo.erase(session, tenant, ids)

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
