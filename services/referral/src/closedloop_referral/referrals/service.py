"""Referrals and rewards. Callers (consumers, gRPC calls, the sweep) own the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop.common.v1 import common_pb2
from closedloop.events.v1 import referral_events_pb2 as ev
from closedloop_referral import metrics
from closedloop_referral.clock import utc, utc_or_none
from closedloop_referral.models import (
    CodeRow,
    KnownCustomerRow,
    LedgerRow,
    ProgramRow,
    ReferralRow,
    RewardRow,
    ShareRow,
    VisitRow,
)
from closedloop_referral.programs.service import is_active
from loopkit.customer_rows import repoint_customer
from loopkit.customers import CustomerDirectory
from loopkit.errors import FailedPrecondition, InvalidArgument, NotFound
from loopkit.events import Outbox

_KINDS = {
    "points": ev.REWARD_KIND_POINTS,
    "coupon": ev.REWARD_KIND_COUPON,
    "cash": ev.REWARD_KIND_CASH,
}
MAX_RING_DEPTH = 5


@dataclass(frozen=True)
class FraudRules:
    # Many newcomers from one referrer within `burst_window_s` are held for review.
    burst_window_s: int = 600
    burst_threshold: int = 5


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


@dataclass(frozen=True)
class ReferralView:
    referral: ReferralRow
    rewards: list[RewardRow]
    ledger: list[LedgerRow]


@dataclass(frozen=True)
class TreeNode:
    customer_id: str
    referrer_id: str
    depth: int
    referral: ReferralRow | None


@dataclass(frozen=True)
class ProgramStats:
    codes: int
    shares: int
    visits: int
    referrals: int
    flagged: int
    converted: int
    rewards_granted: int
    viral_coefficient: float
    mean_seconds_to_convert: float
    top_referrers: list[tuple[str, int, int]]


class ReferralService:
    def __init__(
        self, outbox: Outbox, directory: CustomerDirectory, rules: FraudRules | None = None
    ) -> None:
        self._outbox = outbox
        self._directory = directory
        self._rules = rules or FraudRules()

    # --- the ledger -------------------------------------------------------------------------

    def _log(
        self,
        session: AsyncSession,
        referral: ReferralRow,
        reward: RewardRow | None,
        change: tuple[str, str],
        reason: str,
        *,
        at: datetime,
        actor: str = "system",
    ) -> None:
        from_status, to_status = change
        session.add(
            LedgerRow(
                id=str(ULID()),
                tenant_id=referral.tenant_id,
                referral_id=referral.id,
                reward_id=reward.id if reward is not None else "",
                from_status=from_status,
                to_status=to_status,
                reason=reason[:200],
                actor=actor[:200],
                at=at,
            )
        )

    # --- what we know of customers ------------------------------------------------------------

    async def _known(
        self, session: AsyncSession, tenant_id: str, customer_id: str
    ) -> KnownCustomerRow:
        row = await session.get(KnownCustomerRow, (tenant_id, customer_id))
        if row is None:
            row = KnownCustomerRow(tenant_id=tenant_id, customer_id=customer_id)
            session.add(row)
        return row

    # --- attribution --------------------------------------------------------------------------

    async def lead_captured(self, session: AsyncSession, lead: LeadFacts) -> ReferralRow | None:
        """Ties a new lead to its referrer (first valid referrer wins), checking for fraud."""
        if not lead.newcomer_id:
            return None
        tenant, at = lead.tenant_id, lead.at
        known = await self._known(session, tenant, lead.newcomer_id)
        seen_before = min(
            (t for t in (utc_or_none(known.first_lead_at), utc_or_none(known.first_paid_at)) if t),
            default=None,
        )
        if known.first_lead_at is None or utc(known.first_lead_at) > at:
            known.first_lead_at = at
        await self._claim_visits(session, tenant, lead.newcomer_id, lead.openids)
        existing = await session.scalar(
            select(ReferralRow).where(
                ReferralRow.tenant_id == tenant, ReferralRow.newcomer_id == lead.newcomer_id
            )
        )
        if existing is not None:
            return None  # first valid referrer wins
        found = await self._find_source(session, lead)
        if found is None:
            return None
        code, program, visit = found
        try:
            referrer = await self._directory.current_id(tenant, code.customer_id)
        except NotFound:
            return None  # the referrer is gone (forgotten): nobody to credit
        reason = await self._fraud_reason(
            session, tenant, referrer, lead.newcomer_id, visit=visit, seen_before=seen_before, at=at
        )
        referral = ReferralRow(
            id=str(ULID()),
            tenant_id=tenant,
            program_id=program.id,
            referrer_id=referrer,
            newcomer_id=lead.newcomer_id,
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
        session.add(referral)
        await session.flush()
        self._log(session, referral, None, ("", referral.status), reason or "lead captured", at=at)
        if program.trigger == "lead":
            referral.qualified_at = at
            if referral.status == "approved":
                await self._create_rewards(session, referral, program, at)
        paid_at = utc_or_none(known.first_paid_at)
        first_contact = utc(visit.at) if visit is not None else at
        if paid_at is not None and known.first_paid_order_id and paid_at >= first_contact:
            # The newcomer's order was handled before their lead (another stream): convert now.
            order = OrderFacts(
                tenant_id=tenant,
                customer_id=lead.newcomer_id,
                order_id=known.first_paid_order_id,
                amount_minor=known.first_paid_minor or 0,
                at=paid_at,
            )
            await self.order_paid(session, order)
        return referral

    async def _claim_visits(
        self, session: AsyncSession, tenant: str, newcomer: str, openids: Sequence[str]
    ) -> None:
        if not openids:
            return
        await session.execute(
            update(VisitRow)
            .where(
                VisitRow.tenant_id == tenant,
                VisitRow.visitor_customer_id == "",
                VisitRow.visitor_openid.in_(list(openids)),
            )
            .values(visitor_customer_id=newcomer)
        )

    async def _find_source(
        self, session: AsyncSession, lead: LeadFacts
    ) -> tuple[CodeRow, ProgramRow, VisitRow | None] | None:
        tenant, at = lead.tenant_id, lead.at
        visits = list(
            await session.scalars(
                select(VisitRow)
                .where(
                    VisitRow.tenant_id == tenant,
                    VisitRow.visitor_customer_id == lead.newcomer_id,
                    VisitRow.program_active.is_(True),
                )
                .order_by(VisitRow.at, VisitRow.id)
            )
        )
        code_hint = lead.referral_code.upper()
        if code_hint:
            code = await session.get(CodeRow, code_hint)
            if code is not None and code.tenant_id == tenant:
                program = await session.get(ProgramRow, code.program_id)
                if program is not None and is_active(program, at):
                    visit = next((v for v in visits if v.code == code.code), None)
                    return code, program, visit
            return None  # a code of another tenant, an unknown or an ended program
        # The earliest visit within its program's attribution window.
        for visit in visits:
            program = await session.get(ProgramRow, visit.program_id)
            code = await session.get(CodeRow, visit.code)
            if program is None or code is None or not is_active(program, at):
                continue
            window = timedelta(seconds=program.attribution_window_seconds)
            if utc(visit.at) <= at <= utc(visit.at) + window:
                return code, program, visit
        if lead.referrer_id:
            codes = await session.scalars(
                select(CodeRow)
                .where(CodeRow.tenant_id == tenant, CodeRow.customer_id == lead.referrer_id)
                .order_by(CodeRow.created_at.desc())
            )
            for code in codes:
                program = await session.get(ProgramRow, code.program_id)
                if program is not None and is_active(program, at):
                    return code, program, None
        return None

    async def _fraud_reason(
        self,
        session: AsyncSession,
        tenant: str,
        referrer: str,
        newcomer: str,
        *,
        visit: VisitRow | None,
        seen_before: datetime | None,
        at: datetime,
    ) -> str:
        if referrer == newcomer:
            return "self_referral"
        if visit is not None and visit.device_id:
            referrer_devices = await session.scalar(
                select(func.count())
                .select_from(VisitRow)
                .where(
                    VisitRow.tenant_id == tenant,
                    VisitRow.visitor_customer_id == referrer,
                    VisitRow.device_id == visit.device_id,
                )
            )
            code_devices = await session.scalar(
                select(func.count())
                .select_from(CodeRow)
                .where(
                    CodeRow.tenant_id == tenant,
                    CodeRow.customer_id == referrer,
                    CodeRow.device_id == visit.device_id,
                )
            )
            if referrer_devices or code_devices:
                return "self_referral"
        if await self._in_chain_above(session, tenant, referrer, newcomer):
            return "referral_ring"
        first_contact = utc(visit.at) if visit is not None else at
        if seen_before is not None and seen_before < first_contact:
            return "existing_customer"
        recent = await session.scalar(
            select(func.count())
            .select_from(ReferralRow)
            .where(
                ReferralRow.tenant_id == tenant,
                ReferralRow.referrer_id == referrer,
                ReferralRow.created_at >= at - timedelta(seconds=self._rules.burst_window_s),
            )
        )
        if (recent or 0) + 1 > self._rules.burst_threshold:
            return "burst"
        return ""

    async def _in_chain_above(
        self, session: AsyncSession, tenant: str, customer: str, target: str
    ) -> bool:
        """Whether `target` referred `customer`, directly or up to MAX_RING_DEPTH levels up."""
        current = customer
        for _ in range(MAX_RING_DEPTH):
            parent = await session.scalar(
                select(ReferralRow.referrer_id).where(
                    ReferralRow.tenant_id == tenant,
                    ReferralRow.newcomer_id == current,
                    ReferralRow.status.in_(("approved", "flagged")),
                )
            )
            if parent is None:
                return False
            if parent == target:
                return True
            current = parent
        return False

    # --- orders -----------------------------------------------------------------------------

    async def _referral_of(
        self, session: AsyncSession, tenant: str, newcomer: str, *, lock: bool = False
    ) -> ReferralRow | None:
        query = select(ReferralRow).where(
            ReferralRow.tenant_id == tenant, ReferralRow.newcomer_id == newcomer
        )
        # Locked by writers, so two instances handling one newcomer's events take turns.
        return await session.scalar(query.with_for_update() if lock else query)

    async def order_paid(self, session: AsyncSession, order: OrderFacts) -> None:
        if not order.customer_id:
            return
        known = await self._known(session, order.tenant_id, order.customer_id)
        if known.first_paid_at is None or utc(known.first_paid_at) > order.at:
            known.first_paid_at = order.at
            known.first_paid_order_id = order.order_id
            known.first_paid_minor = order.amount_minor
        referral = await self._referral_of(session, order.tenant_id, order.customer_id, lock=True)
        if referral is None or referral.status in ("rejected", "voided"):
            return
        program = await session.get(ProgramRow, referral.program_id)
        if program is None:
            return
        first = not referral.order_id
        if first:
            referral.order_id = order.order_id
            referral.converted_at = order.at
            self._log(
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
            metrics.converted()
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
        if referral.status == "approved":
            await self._create_rewards(session, referral, program, order.at)

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
        referral = await session.scalar(
            select(ReferralRow).where(
                ReferralRow.tenant_id == tenant, ReferralRow.qualified_order_id == order_id
            )
        )
        if referral is None:
            return 0
        program = await session.get(ProgramRow, referral.program_id)
        below = program is not None and remaining_minor < max(program.min_order_minor, 1)
        if not (full or below):
            return 0
        return await self._revoke_within_hold(session, referral, "order_refunded", at)

    async def customer_deleted_rep(
        self, session: AsyncSession, tenant: str, customer_id: str, at: datetime
    ) -> int:
        referral = await self._referral_of(session, tenant, customer_id)
        if referral is None:
            return 0
        return await self._revoke_within_hold(session, referral, "customer_deleted_rep", at)

    # --- rewards ----------------------------------------------------------------------------

    async def _create_rewards(
        self, session: AsyncSession, referral: ReferralRow, program: ProgramRow, at: datetime
    ) -> None:
        qualified = utc(referral.qualified_at) if referral.qualified_at else at
        hold_until = qualified + timedelta(seconds=program.hold_seconds)
        plans: list[tuple[int, str, str, int, str, int]] = []  # level, who, kind, pts, coupon, cash
        plans.append(
            (
                1,
                referral.referrer_id,
                program.referrer_kind,
                program.referrer_points,
                program.referrer_coupon,
                program.referrer_cash_minor,
            )
        )
        if program.levels == 2 and program.referrer_kind in ("points", "cash"):
            parent = await session.scalar(
                select(ReferralRow.referrer_id).where(
                    ReferralRow.tenant_id == referral.tenant_id,
                    ReferralRow.newcomer_id == referral.referrer_id,
                    ReferralRow.status == "approved",
                )
            )
            if parent and parent not in (referral.newcomer_id, referral.referrer_id):
                pct = program.level2_percent
                plans.append(
                    (
                        2,
                        parent,
                        program.referrer_kind,
                        program.referrer_points * pct // 100,
                        "",
                        program.referrer_cash_minor * pct // 100,
                    )
                )
        if program.newcomer_kind:
            plans.append(
                (
                    0,
                    referral.newcomer_id,
                    program.newcomer_kind,
                    program.newcomer_points,
                    program.newcomer_coupon,
                    program.newcomer_cash_minor,
                )
            )
        for level, who, kind, points, coupon, cash in plans:
            exists = await session.scalar(
                select(RewardRow.id).where(
                    RewardRow.tenant_id == referral.tenant_id,
                    RewardRow.referral_id == referral.id,
                    RewardRow.level == level,
                )
            )
            if exists is not None:
                continue  # never granted twice for the same newcomer
            capped = level == 1 and await self._cap_reached(session, program, who, at)
            reward = RewardRow(
                id=str(ULID()),
                tenant_id=referral.tenant_id,
                referral_id=referral.id,
                program_id=program.id,
                beneficiary_id=who,
                level=level,
                kind=kind,
                points=points,
                coupon_template_id=coupon,
                cash_minor=cash,
                currency=program.currency,
                status="voided" if capped else "held",
                reason="cap_reached" if capped else "",
                hold_until=hold_until,
                granted_at=None,
                created_at=at,
            )
            session.add(reward)
            await session.flush()
            self._log(
                session, referral, reward, ("", reward.status), reward.reason or "earned", at=at
            )
            if not capped and hold_until <= at:
                await self._grant(session, referral, reward, at)

    async def _cap_reached(
        self, session: AsyncSession, program: ProgramRow, referrer: str, at: datetime
    ) -> bool:
        if not program.cap_per_period:
            return False
        since = at - timedelta(days=program.cap_period_days)
        count = await session.scalar(
            select(func.count())
            .select_from(RewardRow)
            .where(
                RewardRow.tenant_id == program.tenant_id,
                RewardRow.program_id == program.id,
                RewardRow.beneficiary_id == referrer,
                RewardRow.level == 1,
                RewardRow.status.in_(("held", "granted")),
                RewardRow.created_at >= since,
            )
        )
        return (count or 0) >= program.cap_per_period

    async def _grant(
        self, session: AsyncSession, referral: ReferralRow, reward: RewardRow, at: datetime
    ) -> None:
        reward.status = "granted"
        reward.granted_at = at
        self._log(session, referral, reward, ("held", "granted"), "hold ended", at=at)
        cash = (
            common_pb2.Money(currency=reward.currency, amount_minor=reward.cash_minor)
            if reward.kind == "cash"
            else None
        )
        await self._outbox.emit(
            session,
            "reward.granted",
            tenant_id=reward.tenant_id,
            customer_id=reward.beneficiary_id,
            payload=ev.RewardGranted(
                reward_id=reward.id,
                referral_id=reward.referral_id,
                kind=_KINDS[reward.kind],
                points=reward.points if reward.kind == "points" else 0,
                cash=cash,
                coupon_template_id=reward.coupon_template_id,
                level=reward.level,
            ),
        )
        metrics.granted(reward.kind)

    async def _rewards_of(self, session: AsyncSession, referral: ReferralRow) -> list[RewardRow]:
        return list(
            await session.scalars(
                select(RewardRow)
                .where(
                    RewardRow.tenant_id == referral.tenant_id, RewardRow.referral_id == referral.id
                )
                .order_by(RewardRow.level)
            )
        )

    async def _revoke_within_hold(
        self, session: AsyncSession, referral: ReferralRow, reason: str, at: datetime
    ) -> int:
        revoked = 0
        for reward in await self._rewards_of(session, referral):
            if reward.status not in ("held", "granted") or at >= utc(reward.hold_until):
                continue
            await self._revoke(session, referral, reward, reason, at=at)
            revoked += 1
        return revoked

    async def _revoke(
        self,
        session: AsyncSession,
        referral: ReferralRow,
        reward: RewardRow,
        reason: str,
        *,
        at: datetime,
        actor: str = "system",
    ) -> None:
        was = reward.status
        reward.status = "revoked" if was == "granted" else "voided"
        reward.reason = reason
        self._log(session, referral, reward, (was, reward.status), reason, at=at, actor=actor)
        # Points credited by retention are reversed; a reward never granted reverses nothing.
        await self._outbox.emit(
            session,
            "reward.revoked",
            tenant_id=reward.tenant_id,
            customer_id=reward.beneficiary_id,
            payload=ev.RewardRevoked(
                reward_id=reward.id,
                referral_id=reward.referral_id,
                reason=reason,
                points=reward.points if was == "granted" and reward.kind == "points" else 0,
            ),
        )

    async def release_due(
        self, session: AsyncSession, tenant_id: str | None, as_of: datetime, limit: int = 500
    ) -> int:
        """Grants held rewards whose hold ended by `as_of` (approved referrals only)."""
        query = (
            select(RewardRow, ReferralRow)
            .join(ReferralRow, ReferralRow.id == RewardRow.referral_id)
            .where(
                RewardRow.status == "held",
                RewardRow.hold_until <= as_of,
                ReferralRow.status == "approved",
            )
            .order_by(RewardRow.hold_until)
            .limit(limit)
        )
        if tenant_id is not None:
            query = query.where(RewardRow.tenant_id == tenant_id)
        granted = 0
        for reward, referral in (await session.execute(query)).all():
            await self._grant(session, referral, reward, as_of)
            granted += 1
        return granted

    # --- review -----------------------------------------------------------------------------

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
    ) -> ReferralRow:
        if not reviewer:
            raise InvalidArgument("the reviewer is required", field="reviewer")
        referral = await self.get_row(session, tenant, referral_id, lock=True)
        if referral.status != "flagged":
            raise FailedPrecondition(
                f"only a flagged referral can be reviewed (it is {referral.status})",
                field="referral_id",
            )
        reason = note or ("approved" if approve else "rejected")
        if approve:
            referral.status = "approved"
            self._log(
                session, referral, None, ("flagged", "approved"), reason, at=at, actor=reviewer
            )
            program = await session.get(ProgramRow, referral.program_id)
            if program is not None and referral.qualified_at is not None:
                await self._create_rewards(session, referral, program, at)
        else:
            referral.status = "rejected"
            self._log(
                session, referral, None, ("flagged", "rejected"), reason, at=at, actor=reviewer
            )
            for reward in await self._rewards_of(session, referral):
                if reward.status == "held":
                    await self._revoke(
                        session, referral, reward, "referral_rejected", at=at, actor=reviewer
                    )
        return referral

    # --- reads ------------------------------------------------------------------------------

    async def get_row(
        self, session: AsyncSession, tenant: str, referral_id: str, *, lock: bool = False
    ) -> ReferralRow:
        if not referral_id:
            raise InvalidArgument("a referral id is required", field="referral_id")
        row = await session.get(ReferralRow, referral_id, with_for_update=lock or None)
        if row is None or row.tenant_id != tenant:
            raise NotFound(f"no referral {referral_id}", field="referral_id")
        return row

    async def get(
        self, session: AsyncSession, tenant: str, referral_id: str, newcomer_id: str
    ) -> ReferralView:
        if referral_id:
            referral = await self.get_row(session, tenant, referral_id)
        elif newcomer_id:
            found = await self._referral_of(session, tenant, newcomer_id)
            if found is None:
                raise NotFound("this customer was not referred", field="newcomer_customer_id")
            referral = found
        else:
            raise InvalidArgument("a referral id or newcomer id is required", field="referral_id")
        ledger = list(
            await session.scalars(
                select(LedgerRow)
                .where(LedgerRow.tenant_id == tenant, LedgerRow.referral_id == referral.id)
                .order_by(LedgerRow.at, LedgerRow.id)
            )
        )
        return ReferralView(referral, await self._rewards_of(session, referral), ledger)

    async def list_referrals(
        self,
        session: AsyncSession,
        tenant: str,
        *,
        status: str,
        referrer: str,
        program_id: str,
        limit: int,
    ) -> list[ReferralRow]:
        query = select(ReferralRow).where(ReferralRow.tenant_id == tenant)
        if status:
            query = query.where(ReferralRow.status == status)
        if referrer:
            query = query.where(ReferralRow.referrer_id == referrer)
        if program_id:
            query = query.where(ReferralRow.program_id == program_id)
        limit = min(max(limit, 1), 500) if limit else 100
        query = query.order_by(ReferralRow.created_at.desc(), ReferralRow.id.desc()).limit(limit)
        return list(await session.scalars(query))

    async def list_rewards(
        self,
        session: AsyncSession,
        tenant: str,
        *,
        beneficiary: str,
        referral_id: str,
        status: str,
        limit: int,
    ) -> list[RewardRow]:
        query = select(RewardRow).where(RewardRow.tenant_id == tenant)
        if beneficiary:
            query = query.where(RewardRow.beneficiary_id == beneficiary)
        if referral_id:
            query = query.where(RewardRow.referral_id == referral_id)
        if status:
            query = query.where(RewardRow.status == status)
        limit = min(max(limit, 1), 500) if limit else 100
        return list(
            await session.scalars(query.order_by(RewardRow.created_at, RewardRow.id).limit(limit))
        )

    async def tree(
        self, session: AsyncSession, tenant: str, customer_id: str, depth: int
    ) -> list[TreeNode]:
        if not customer_id:
            raise InvalidArgument("a customer id is required", field="customer_id")
        if not 0 <= depth <= 5:
            raise InvalidArgument("depth must be 1..5", field="depth")
        depth = depth or 2
        nodes = [TreeNode(customer_id, "", 0, None)]
        frontier, seen = [customer_id], {customer_id}
        for level in range(1, depth + 1):
            if not frontier:
                break
            rows = await session.scalars(
                select(ReferralRow)
                .where(ReferralRow.tenant_id == tenant, ReferralRow.referrer_id.in_(frontier))
                .order_by(ReferralRow.created_at, ReferralRow.id)
            )
            frontier = []
            for row in rows:
                if row.newcomer_id in seen:
                    continue  # a ring: shown once
                seen.add(row.newcomer_id)
                nodes.append(TreeNode(row.newcomer_id, row.referrer_id, level, row))
                frontier.append(row.newcomer_id)
        return nodes

    async def stats(self, session: AsyncSession, program: ProgramRow, top: int) -> ProgramStats:
        tenant, pid = program.tenant_id, program.id

        async def count(model: type, *where: object) -> int:
            value = await session.scalar(
                select(func.count()).select_from(model).where(*where)  # type: ignore[arg-type]
            )
            return int(value or 0)

        codes = await count(CodeRow, CodeRow.tenant_id == tenant, CodeRow.program_id == pid)
        shares = await count(ShareRow, ShareRow.tenant_id == tenant, ShareRow.program_id == pid)
        visits = await count(VisitRow, VisitRow.tenant_id == tenant, VisitRow.program_id == pid)
        in_program = and_(ReferralRow.tenant_id == tenant, ReferralRow.program_id == pid)
        referrals = await count(ReferralRow, in_program)
        flagged = await count(ReferralRow, in_program, ReferralRow.status == "flagged")
        approved = await count(ReferralRow, in_program, ReferralRow.status == "approved")
        converted = await count(ReferralRow, in_program, ReferralRow.converted_at.is_not(None))
        granted = await count(
            RewardRow,
            RewardRow.tenant_id == tenant,
            RewardRow.program_id == pid,
            RewardRow.status == "granted",
        )
        pairs = (
            await session.execute(
                select(ReferralRow.created_at, ReferralRow.converted_at).where(
                    in_program, ReferralRow.converted_at.is_not(None)
                )
            )
        ).all()
        spans = [(utc(c) - utc(s)).total_seconds() for s, c in pairs if c is not None]
        referrers = await session.scalar(
            select(func.count(func.distinct(CodeRow.customer_id))).where(
                CodeRow.tenant_id == tenant, CodeRow.program_id == pid
            )
        )
        top_rows = (
            await session.execute(
                select(
                    ReferralRow.referrer_id,
                    func.count(),
                    func.count(ReferralRow.converted_at),
                )
                .where(in_program, ReferralRow.status == "approved")
                .group_by(ReferralRow.referrer_id)
                .order_by(func.count().desc(), ReferralRow.referrer_id)
                .limit(min(max(top, 1), 100) if top else 10)
            )
        ).all()
        return ProgramStats(
            codes=codes,
            shares=shares,
            visits=visits,
            referrals=referrals,
            flagged=flagged,
            converted=converted,
            rewards_granted=granted,
            viral_coefficient=approved / referrers if referrers else 0.0,
            mean_seconds_to_convert=sum(spans) / len(spans) if spans else 0.0,
            top_referrers=[(r, int(n), int(c)) for r, n, c in top_rows],
        )

    # --- identity events --------------------------------------------------------------------

    async def customer_merged(
        self, session: AsyncSession, tenant: str, survivor: str, merged: str, at: datetime
    ) -> None:
        """Moves the merged customer's rows to the survivor without making a self-referral loop
        or a second referral (so a second reward) for one person."""
        mine = await self._referral_of(session, tenant, survivor)
        theirs = await self._referral_of(session, tenant, merged)
        if mine is not None and theirs is not None:
            if utc(mine.created_at) <= utc(theirs.created_at):
                await self._void(session, theirs, "merged_duplicate", at)
            else:
                # The earlier referral (the merged id's) wins the survivor's newcomer slot; the
                # dropped one keeps the merged id, swapped through a placeholder so the unique
                # (tenant, newcomer) rule holds at every step.
                await self._void(session, mine, "merged_duplicate", at)
                mine.newcomer_id = mine.id
                await session.flush()
                theirs.newcomer_id = survivor
                await session.flush()
                mine.newcomer_id = merged
                await session.flush()
        # A program both had a code in: the merged one's code stays valid, as a secondary code.
        kept = select(CodeRow.program_id).where(
            CodeRow.tenant_id == tenant, CodeRow.customer_id == survivor, CodeRow.slot == ""
        )
        await session.execute(
            update(CodeRow)
            .where(
                CodeRow.tenant_id == tenant,
                CodeRow.customer_id == merged,
                CodeRow.slot == "",
                CodeRow.program_id.in_(kept),
            )
            .values(slot=CodeRow.code)
        )
        columns: list[tuple[Any, str]] = [
            (CodeRow, "customer_id"),
            (ShareRow, "customer_id"),
            (VisitRow, "referrer_id"),
            (VisitRow, "visitor_customer_id"),
            (ReferralRow, "referrer_id"),
            (RewardRow, "beneficiary_id"),
        ]
        await repoint_customer(session, columns, tenant_id=tenant, from_id=merged, to_id=survivor)
        if theirs is not None and mine is None:
            theirs.newcomer_id = survivor  # their one referral is now the survivor's
        await session.flush()
        loops = await session.scalars(
            select(ReferralRow).where(
                ReferralRow.tenant_id == tenant,
                ReferralRow.referrer_id == survivor,
                ReferralRow.newcomer_id == survivor,
                ReferralRow.status.in_(("approved", "flagged")),
            )
        )
        for loop in list(loops):
            loop.flag_reason = "self_referral"
            await self._void(session, loop, "self_referral", at)
        await self._merge_known(session, tenant, survivor, merged)

    async def _void(
        self, session: AsyncSession, referral: ReferralRow, reason: str, at: datetime
    ) -> None:
        if referral.status != "voided":
            self._log(session, referral, None, (referral.status, "voided"), reason, at=at)
            referral.status = "voided"
        for reward in await self._rewards_of(session, referral):
            if reward.status == "held":
                await self._revoke(session, referral, reward, reason, at=at)

    async def _merge_known(
        self, session: AsyncSession, tenant: str, survivor: str, merged: str
    ) -> None:
        other = await session.get(KnownCustomerRow, (tenant, merged))
        if other is None:
            return
        mine = await self._known(session, tenant, survivor)
        leads = [utc(v) for v in (mine.first_lead_at, other.first_lead_at) if v is not None]
        mine.first_lead_at = min(leads) if leads else None
        theirs_first = other.first_paid_at is not None and (
            mine.first_paid_at is None or utc(other.first_paid_at) < utc(mine.first_paid_at)
        )
        if theirs_first:
            mine.first_paid_at = other.first_paid_at
            mine.first_paid_order_id = other.first_paid_order_id
            mine.first_paid_minor = other.first_paid_minor
        await session.delete(other)

    async def customer_forgotten(
        self, session: AsyncSession, tenant: str, ids: Sequence[str]
    ) -> None:
        """Erases personal data (openids, device hints, shared content); the pseudonymous
        referral and reward rows stay, as the accounts of rewards paid."""
        ids = list(ids)
        await session.execute(
            update(VisitRow)
            .where(
                VisitRow.tenant_id == tenant,
                or_(VisitRow.visitor_customer_id.in_(ids), VisitRow.referrer_id.in_(ids)),
            )
            .values(visitor_openid="", visitor_appid="", device_id="")
        )
        await session.execute(
            update(CodeRow)
            .where(CodeRow.tenant_id == tenant, CodeRow.customer_id.in_(ids))
            .values(device_id="")
        )
        await session.execute(
            delete(ShareRow).where(ShareRow.tenant_id == tenant, ShareRow.customer_id.in_(ids))
        )
        await session.execute(
            delete(KnownCustomerRow).where(
                KnownCustomerRow.tenant_id == tenant, KnownCustomerRow.customer_id.in_(ids)
            )
        )
