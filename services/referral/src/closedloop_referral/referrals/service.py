"""Referrals: a lead tied to its referrer (attribution, fraud checks), its conversion by the
newcomer's first paid order, review of flagged ones, and revocation when an order or the
relationship goes away. Callers (consumers, gRPC calls) own the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop.events.v1 import referral_events_pb2 as ev
from closedloop_referral import metrics
from closedloop_referral.clock import utc, utc_or_none
from closedloop_referral.models import CodeRow, KnownCustomerRow, ProgramRow, ReferralRow, VisitRow
from closedloop_referral.programs.repository import ProgramRepository
from closedloop_referral.programs.service import is_active
from closedloop_referral.referrals.fraud import FraudCheck
from closedloop_referral.referrals.repository import ReferralRepository
from closedloop_referral.referrals.views import LedgerEntryView, ReferralDetails, ReferralView
from closedloop_referral.rewards.service import RewardService
from loopkit.customers import CustomerDirectory
from loopkit.errors import FailedPrecondition, InvalidArgument, NotFound
from loopkit.events import Outbox
from loopkit.views import view_of


@dataclass(frozen=True)
class LeadFacts:
    tenant_id: str
    newcomer_id: str
    lead_id: str
    referral_code: str
    referrer_id: str
    openids: Sequence[str]
    at: datetime


@dataclass(frozen=True)
class OrderFacts:
    tenant_id: str
    customer_id: str
    order_id: str
    amount_minor: int
    at: datetime


class ReferralService:
    def __init__(
        self,
        outbox: Outbox,
        directory: CustomerDirectory,
        *,
        fraud: FraudCheck,
        rewards: RewardService,
        referrals: ReferralRepository,
        programs: ProgramRepository,
    ) -> None:
        self._outbox = outbox
        self._directory = directory
        self._fraud = fraud
        self._rewards = rewards
        self._repo = referrals
        self._programs = programs

    # --- attribution --------------------------------------------------------------------------

    async def lead_captured(self, session: AsyncSession, lead: LeadFacts) -> ReferralRow | None:
        """Ties a new lead to its referrer (first valid referrer wins), checking for fraud."""
        if not lead.newcomer_id:
            return None
        tenant, at = lead.tenant_id, lead.at
        known = await self._repo.known(session, tenant, lead.newcomer_id)
        seen_before = _first_seen(known)
        if known.first_lead_at is None or utc(known.first_lead_at) > at:
            known.first_lead_at = at
        if lead.openids:
            await self._programs.claim_visits(session, tenant, lead.newcomer_id, lead.openids)
        if await self._repo.of_newcomer(session, tenant, lead.newcomer_id) is not None:
            return None  # first valid referrer wins
        found = await self._find_source(session, lead)
        if found is None:
            return None
        code, program, visit = found
        try:
            referrer = await self._directory.current_id(tenant, code.customer_id)
            # The lead may name a newcomer merged away since (the merge applied here before the
            # lead arrived): the referral is the survivor's, whose orders will convert it.
            newcomer = await self._directory.current_id(tenant, lead.newcomer_id)
        except NotFound:
            return None  # the referrer or the newcomer is gone (forgotten): nothing to credit
        if newcomer != lead.newcomer_id:
            if await self._repo.of_newcomer(session, tenant, newcomer) is not None:
                return None  # first valid referrer wins
            if newcomer == referrer:
                return None  # merged into their own referrer: a self-referral credits nobody
            # What is known of the survivor (the merge folded the newcomer's into it).
            known = await self._repo.known(session, tenant, newcomer)
            seen_before = _first_seen(known)
            if known.first_lead_at is None or utc(known.first_lead_at) > at:
                known.first_lead_at = at
        reason = await self._fraud.reason(
            session, tenant, referrer, newcomer, visit=visit, seen_before=seen_before, at=at
        )
        referral = ReferralRow(
            id=str(ULID()),
            tenant_id=tenant,
            program_id=program.id,
            referrer_id=referrer,
            newcomer_id=newcomer,
            code=code.code,
            visit_id=visit.id if visit is not None else "",
            lead_id=lead.lead_id,
            status="flagged" if reason else "approved",
            flag_reason=reason,
            order_id="",
            qualified_order_id="",
            qualified_at=None,
            created_at=at,
            converted_at=None,
        )
        await self._repo.add(session, referral)
        self._repo.log(
            session, referral, None, ("", referral.status), reason or "lead captured", at=at
        )
        if program.trigger == "lead":
            referral.qualified_at = at
            await self._rewards.create(session, referral, program, at)
        paid_at = utc_or_none(known.first_paid_at)
        first_contact = utc(visit.at) if visit is not None else at
        if paid_at is not None and known.first_paid_order_id and paid_at >= first_contact:
            # The newcomer's order was handled before their lead (another stream): convert now.
            order = OrderFacts(
                tenant_id=tenant,
                customer_id=newcomer,
                order_id=known.first_paid_order_id,
                amount_minor=known.first_paid_minor or 0,
                at=paid_at,
            )
            await self.order_paid(session, order)
        return referral

    async def _find_source(
        self, session: AsyncSession, lead: LeadFacts
    ) -> tuple[CodeRow, ProgramRow, VisitRow | None] | None:
        tenant, at = lead.tenant_id, lead.at
        visits = await self._programs.active_visits_of(session, tenant, lead.newcomer_id)
        code_hint = lead.referral_code.upper()
        if code_hint:
            code = await self._programs.code(session, code_hint)
            if code is not None and code.tenant_id == tenant:
                program = await self._programs.program(session, code.program_id)
                if program is not None and is_active(program, at):
                    visit = next((v for v in visits if v.code == code.code), None)
                    return code, program, visit
            return None  # a code of another tenant, an unknown or an ended program
        # The earliest visit within its program's attribution window.
        for visit in visits:
            program = await self._programs.program(session, visit.program_id)
            code = await self._programs.code(session, visit.code)
            if program is None or code is None or not is_active(program, at):
                continue
            window = timedelta(seconds=program.attribution_window_seconds)
            if utc(visit.at) <= at <= utc(visit.at) + window:
                return code, program, visit
        if lead.referrer_id:
            for code in await self._programs.codes_of(session, tenant, lead.referrer_id):
                program = await self._programs.program(session, code.program_id)
                if program is not None and is_active(program, at):
                    return code, program, None
        return None

    # --- orders -------------------------------------------------------------------------------

    async def order_paid(self, session: AsyncSession, order: OrderFacts) -> None:
        if not order.customer_id:
            return
        known = await self._repo.known(session, order.tenant_id, order.customer_id)
        if known.first_paid_at is None or utc(known.first_paid_at) > order.at:
            known.first_paid_at = order.at
            known.first_paid_order_id = order.order_id
            known.first_paid_minor = order.amount_minor
        referral = await self._repo.of_newcomer(
            session, order.tenant_id, order.customer_id, lock=True
        )
        if referral is None or referral.status in ("rejected", "voided"):
            return
        program = await self._programs.program(session, referral.program_id)
        if program is None:
            return
        first = not referral.order_id
        if first:
            referral.order_id = order.order_id
            referral.converted_at = order.at
            self._repo.log(
                session,
                referral,
                None,
                (referral.status, referral.status),
                "converted",
                at=order.at,
            )
            await self._outbox.emit(
                session,
                "referral.converted",
                tenant_id=referral.tenant_id,
                customer_id=referral.newcomer_id,
                payload=ev.ReferralConverted(
                    referral_id=referral.id,
                    referrer_customer_id=referral.referrer_id,
                    program_id=referral.program_id,
                    order_id=order.order_id,
                ),
            )
            metrics.converted(session)
        if referral.qualified_at is not None:
            return  # rewarded (or waiting for review) already: never twice
        qualifies = (program.trigger == "first_paid_order" and first) or (
            program.trigger == "order_above_amount"
            and order.amount_minor >= program.min_order_minor
        )
        if not qualifies:
            return
        referral.qualified_at = order.at
        referral.qualified_order_id = order.order_id
        # A flagged referral's rewards are kept `flagged` until its review.
        await self._rewards.create(session, referral, program, order.at)

    async def order_refunded(
        self,
        session: AsyncSession,
        tenant: str,
        order_id: str,
        *,
        full: bool,
        remaining_minor: int,
        at: datetime,
    ) -> int:
        """A refund of the qualifying order within the hold revokes its rewards."""
        if not order_id:
            return 0
        referral = await self._repo.by_qualifying_order(session, tenant, order_id)
        if referral is None:
            return 0
        program = await self._programs.program(session, referral.program_id)
        below = program is not None and remaining_minor < max(program.min_order_minor, 1)
        if not (full or below):
            return 0
        return await self._rewards.revoke_within_hold(session, referral, "order_refunded", at)

    async def customer_deleted_rep(
        self, session: AsyncSession, tenant: str, customer_id: str, at: datetime
    ) -> int:
        referral = await self._repo.of_newcomer(session, tenant, customer_id)
        if referral is None:
            return 0
        return await self._rewards.revoke_within_hold(session, referral, "customer_deleted_rep", at)

    # --- review and voiding -------------------------------------------------------------------

    async def review(
        self,
        session: AsyncSession,
        tenant: str,
        referral_id: str,
        *,
        approve: bool,
        reviewer: str,
        note: str,
        at: datetime,
    ) -> ReferralView:
        if not reviewer:
            raise InvalidArgument("the reviewer is required", field="reviewer")
        referral = await self._row(session, tenant, referral_id, lock=True)
        if referral.status != "flagged":
            raise FailedPrecondition(
                f"only a flagged referral can be reviewed (it is {referral.status})",
                field="referral_id",
            )
        reason = note or ("approved" if approve else "rejected")
        if approve:
            referral.status = "approved"
            self._repo.log(
                session, referral, None, ("flagged", "approved"), reason, at=at, actor=reviewer
            )
            program = await self._programs.program(session, referral.program_id)
            if program is not None and referral.qualified_at is not None:
                await self._rewards.approve_flagged(
                    session, referral, program, at=at, actor=reviewer
                )
                await self._rewards.create(session, referral, program, at)  # any level missing
        else:
            referral.status = "rejected"
            self._repo.log(
                session, referral, None, ("flagged", "rejected"), reason, at=at, actor=reviewer
            )
            await self._rewards.void_all(
                session, referral, "referral_rejected", at=at, actor=reviewer
            )
        return view_of(ReferralView, referral)

    async def void(
        self, session: AsyncSession, referral: ReferralRow, reason: str, at: datetime
    ) -> None:
        """A duplicate or a self-referral found after the fact: every reward voided, granted
        ones clawed back (one person, one reward; nobody is rewarded for referring themselves)."""
        if referral.status != "voided":
            self._repo.log(session, referral, None, (referral.status, "voided"), reason, at=at)
            referral.status = "voided"
        await self._rewards.void_all(session, referral, reason, at=at)

    # --- reads --------------------------------------------------------------------------------

    async def _row(
        self, session: AsyncSession, tenant: str, referral_id: str, *, lock: bool = False
    ) -> ReferralRow:
        if not referral_id:
            raise InvalidArgument("a referral id is required", field="referral_id")
        row = await self._repo.get(session, referral_id, lock=lock)
        if row is None or row.tenant_id != tenant:
            raise NotFound(f"no referral {referral_id}", field="referral_id")
        return row

    async def get(
        self, session: AsyncSession, tenant: str, referral_id: str, newcomer_id: str
    ) -> ReferralDetails:
        if referral_id:
            referral = await self._row(session, tenant, referral_id)
        elif newcomer_id:
            found = await self._repo.of_newcomer(session, tenant, newcomer_id)
            if found is None:
                raise NotFound("this customer was not referred", field="newcomer_customer_id")
            referral = found
        else:
            raise InvalidArgument("a referral id or newcomer id is required", field="referral_id")
        ledger = await self._repo.ledger(session, tenant, referral.id)
        return ReferralDetails(
            view_of(ReferralView, referral),
            await self._rewards.of_referral(session, referral),
            [view_of(LedgerEntryView, e) for e in ledger],
        )

    async def listed(
        self,
        session: AsyncSession,
        tenant: str,
        *,
        status: str,
        referrer: str,
        program_id: str,
        limit: int,
    ) -> list[ReferralView]:
        limit = min(max(limit, 1), 500) if limit else 100
        rows = await self._repo.listed(
            session, tenant, status=status, referrer=referrer, program_id=program_id, limit=limit
        )
        return [view_of(ReferralView, r) for r in rows]


def _first_seen(known: KnownCustomerRow) -> datetime | None:
    """When this service first saw the customer (a lead or a paid order), if ever."""
    return min(
        (t for t in (utc_or_none(known.first_lead_at), utc_or_none(known.first_paid_at)) if t),
        default=None,
    )
