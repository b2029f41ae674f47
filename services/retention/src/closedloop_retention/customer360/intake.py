"""What each consumed event adds to a customer's 360: their leads, follow-ups, orders, referral
position and timeline (the c360_* tables, through the repository). Nothing for a customer the 360
erased (customer.forgotten): an event of theirs arriving late or replayed does not bring their
rows back, and one naming them as referrer keeps the referral without them.

Timeline summaries carry ids, channels, amounts and codes, never personal data (names, phones,
openids): the rows are erased with the customer, and the answer may go to a reporting caller."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.clock import utc
from closedloop_retention.customer360.repository import Customer360Repository
from closedloop_retention.customer360.views import Entry, LeadFacts
from closedloop_retention.models import C360FollowUpRow, C360OrderRow, C360RewardRow


def _money(minor: int, currency: str) -> str:
    return f"{minor / 100:.2f} {currency}".strip()


class Customer360Intake:
    def __init__(self, repo: Customer360Repository) -> None:
        self._repo = repo

    async def _gone(self, session: AsyncSession, tenant: str, customer: str) -> bool:
        """Whether the customer was forgotten (their late event adds nothing)."""
        return customer in await self._repo.forgotten_among(session, tenant, [customer])

    async def is_forgotten(self, session: AsyncSession, tenant: str, customer: str) -> bool:
        """Whether retention erased this customer; holds their lock to the transaction's end, so
        an erasure in progress is waited for and what this transaction writes cannot outlive it."""
        return await self._gone(session, tenant, customer)

    # --- what each event adds (nothing for a forgotten customer) -------------------------------

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
        if await self._gone(session, tenant, customer):
            return
        where = f" via channel {channel_id}" if channel_id else ""
        entry = Entry(event_id, "touch.recorded", "acquisition", at, f"{kind}{where}", channel_id)
        await self._repo.add_entry(session, tenant, customer, entry)

    async def lead_captured(
        self, session: AsyncSession, tenant: str, customer: str, at: datetime, lead: LeadFacts
    ) -> None:
        gone = await self._repo.forgotten_among(session, tenant, [customer, lead.referrer_id])
        if customer in gone:
            return
        # Referred by a forgotten customer: the referral and its code stay, not who made it
        # (as the erasure leaves the referrals it finds).
        referred = bool(lead.referrer_id) and lead.referrer_id != customer
        if lead.referrer_id == customer or lead.referrer_id in gone:
            code = lead.referral_code if referred else ""
            lead = LeadFacts(
                lead.lead_id, lead.campaign_id, lead.channel_id, lead.channel_kind, "", code
            )
        await self._repo.lead_captured(session, tenant, customer, lead, at)
        summary = f"lead {lead.lead_id} via channel {lead.channel_id or '-'}"
        if lead.campaign_id:
            summary += f" (campaign {lead.campaign_id})"
        if referred:
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
        if await self._gone(session, tenant, customer):
            return
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
        if await self._gone(session, tenant, customer):
            return
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
        if await self._gone(session, tenant, customer):
            return
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
        if await self._gone(session, tenant, customer):
            return
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
        if await self._gone(session, tenant, customer):
            return
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
        if await self._gone(session, tenant, customer):
            return
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
        if await self._gone(session, tenant, customer):
            return
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
        gone = await self._repo.forgotten_among(session, tenant, [newcomer, referrer])
        if referrer in gone:
            referrer = ""  # the referral stays, not who made it (as the erasure leaves it)
        if newcomer in gone:
            newcomer = ""
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
        if await self._gone(session, tenant, customer):
            return
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
        if await self._gone(session, tenant, customer):
            return
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
