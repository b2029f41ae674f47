"""Points ledger and coupons. Every movement is a ledger row with a unique idempotency key; the
account's balance is the ledger's sum, debited with one conditional UPDATE so concurrent
redemptions can never overdraw it."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop.events.v1 import retention_events_pb2 as ev
from closedloop_retention import metrics
from closedloop_retention.activity.rules import Rules, RulesRepository
from closedloop_retention.clock import now, utc
from closedloop_retention.loyalty.repository import LoyaltyRepository
from closedloop_retention.loyalty.views import (
    Account,
    CouponView,
    LedgerEntryView,
    Posted,
    RewardGrant,
)
from closedloop_retention.models import CouponRow, LedgerRow, LoyaltyAccountRow
from loopkit.errors import FailedPrecondition, InvalidArgument, NotFound
from loopkit.events import Outbox
from loopkit.uow import on_commit
from loopkit.views import view_of

# Sources that count towards the lifetime points a tier is based on (spending does not).
EARNING_SOURCES = {"order", "refund", "referral", "revoke", "manual", "fission"}
MAX_KEY = 200
# Ledger keys a client chose (RedeemPoints, AdjustPoints): a retry's key, forgotten after
# CLOSEDLOOP_IDEMPOTENCY_KEY_RETENTION_S. The ledger's own keys (order:, refund:, reward:, ...)
# are kept: they make an order or a reward count once, however late an event comes again.
REDEEM_KEY, MANUAL_KEY = "redeem:", "manual:"
CLIENT_KEY_PREFIXES = (REDEEM_KEY, MANUAL_KEY)
# A referral reward's key (a ledger entry's or a coupon's): kept, like an order's.
REWARD_KEY = "reward:"


class LoyaltyService:
    def __init__(
        self, outbox: Outbox, rules: RulesRepository, repository: LoyaltyRepository | None = None
    ) -> None:
        self._outbox = outbox
        self._rules = rules
        self._repo = repository or LoyaltyRepository()

    async def account_of(
        self, session: AsyncSession, tenant: str, customer_id: str, ledger_limit: int
    ) -> Account:
        """Balance, lifetime points, tier, the latest ledger entries and the coupons."""
        account = await self._repo.account(session, tenant, customer_id)
        rules = await self._rules.get(session, tenant)
        lifetime = account.lifetime_points if account else 0
        return Account(
            customer_id=customer_id,
            balance=account.balance if account else 0,
            lifetime_points=lifetime,
            tier=rules.tier_for(lifetime),
            ledger=[
                view_of(LedgerEntryView, e)
                for e in await self._repo.ledger(session, tenant, customer_id, ledger_limit)
            ],
            coupons=[
                view_of(CouponView, c)
                for c in await self._repo.coupons(session, tenant, customer_id)
            ],
        )

    async def account(
        self, session: AsyncSession, tenant: str, customer_id: str
    ) -> LoyaltyAccountRow:
        row = await self._repo.account(session, tenant, customer_id)
        if row is None:
            row = LoyaltyAccountRow(
                tenant_id=tenant,
                customer_id=customer_id,
                balance=0,
                lifetime_points=0,
                updated_at=now(),
            )
            await self._repo.add(session, row)
        return row

    async def post(
        self,
        session: AsyncSession,
        tenant: str,
        customer_id: str,
        points: int,
        *,
        source: str,
        source_ref: str,
        reason: str,
        key: str,
        at: datetime,
        allow_negative: bool = False,
    ) -> Posted:
        """One ledger movement, once per key. A debit without `allow_negative` never takes the
        balance below zero (FAILED_PRECONDITION, nothing written)."""
        if not key or len(key) > MAX_KEY:
            raise InvalidArgument(f"must be 1-{MAX_KEY} characters", field="idempotency_key")
        if points == 0:
            raise InvalidArgument("must not be zero", field="points")
        existing = await self._repo.entry_by_key(session, tenant, key)
        if existing is not None:
            if existing.customer_id != customer_id or existing.points != points:
                raise InvalidArgument(
                    "idempotency key already used for another movement", field="idempotency_key"
                )
            balance = await self._repo.balance(session, tenant, customer_id)
            return Posted(view_of(LedgerEntryView, existing), balance, False)
        await self.account(session, tenant, customer_id)
        lifetime = points if source in EARNING_SOURCES else 0
        moved = await self._repo.move(
            session,
            tenant,
            customer_id,
            points,
            lifetime=lifetime,
            at=utc(at),
            floor_at_zero=points < 0 and not allow_negative,
        )
        if not moved:
            balance = await self._repo.balance(session, tenant, customer_id)
            raise FailedPrecondition(
                f"insufficient points: balance {balance}, requested {-points}", field="points"
            )
        entry = LedgerRow(
            id=str(ULID()),
            tenant_id=tenant,
            customer_id=customer_id,
            points=points,
            source=source,
            source_ref=source_ref[:128],
            reason=reason[:300],
            idempotency_key=key,
            created_at=utc(at),
        )
        await self._repo.add(session, entry)
        balance = await self._repo.balance(session, tenant, customer_id)
        if points > 0:
            on_commit(session, lambda: metrics.points_earned.add(points, {"source": source}))
            await self._outbox.emit(
                session,
                "points.earned",
                tenant_id=tenant,
                customer_id=customer_id,
                payload=ev.PointsEarned(
                    entry_id=entry.id,
                    points=points,
                    balance_after=balance,
                    source=source,
                    source_ref=source_ref,
                ),
            )
        else:
            await self._outbox.emit(
                session,
                "points.redeemed",
                tenant_id=tenant,
                customer_id=customer_id,
                payload=ev.PointsRedeemed(
                    entry_id=entry.id, points=points, balance_after=balance, reason=reason or source
                ),
            )
        return Posted(view_of(LedgerEntryView, entry), balance, True)

    # --- points from other services' events ---------------------------------------------------

    @staticmethod
    def points_for(amount_minor: int, rules: Rules) -> int:
        return int(amount_minor * rules.points_per_yuan // 100)

    async def credit_order(
        self,
        session: AsyncSession,
        tenant: str,
        customer_id: str,
        order_id: str,
        *,
        amount_minor: int,
        rules: Rules,
        at: datetime,
    ) -> Posted | None:
        points = self.points_for(amount_minor, rules)
        if points <= 0:
            return None
        return await self.post(
            session,
            tenant,
            customer_id,
            points,
            source="order",
            source_ref=order_id,
            reason="order paid",
            key=f"order:{order_id}",
            at=at,
        )

    async def reverse_order(
        self,
        session: AsyncSession,
        tenant: str,
        customer_id: str,
        order_id: str,
        *,
        refunded_total_minor: int,
        order_amount_minor: int,
        at: datetime,
    ) -> Posted | None:
        """Takes back the order's points in proportion to what was refunded so far."""
        earned_row = await self._repo.entry_by_key(session, tenant, f"order:{order_id}")
        if earned_row is None or order_amount_minor <= 0:
            return None
        earned = earned_row.points
        share = min(max(refunded_total_minor, 0), order_amount_minor)
        target = earned * share // order_amount_minor
        reversed_so_far = await self._repo.refunded_points(session, tenant, order_id)
        delta = target - reversed_so_far
        if delta <= 0:
            return None
        # Points already spent may take the balance below zero: a refund is not a way to keep them.
        return await self.post(
            session,
            tenant,
            earned_row.customer_id,
            -delta,
            source="refund",
            source_ref=order_id,
            reason="order refunded",
            key=f"refund:{order_id}:{target}",
            at=at,
            allow_negative=True,
        )

    # --- coupons -----------------------------------------------------------------------------

    async def issue_coupon(
        self,
        session: AsyncSession,
        tenant: str,
        customer_id: str,
        *,
        template_id: str,
        value_minor: int,
        valid_days: int,
        reason: str,
        key: str,
        at: datetime,
    ) -> CouponView:
        if not customer_id:
            raise InvalidArgument("a customer is required", field="customer_id")
        if not template_id or len(template_id) > 64:
            raise InvalidArgument("must be 1-64 characters", field="template_id")
        if value_minor < 0:
            raise InvalidArgument("must not be negative", field="value_minor")
        if not 1 <= valid_days <= 3650:
            raise InvalidArgument("must be within 1..3650", field="valid_days")
        key = key or str(ULID())
        if len(key) > MAX_KEY:
            raise InvalidArgument(f"must be at most {MAX_KEY} characters", field="idempotency_key")
        existing = await self._repo.coupon_by_key(session, tenant, key)
        if existing is not None:
            return view_of(CouponView, existing)
        at = utc(at)
        coupon = CouponRow(
            id=str(ULID()),
            tenant_id=tenant,
            customer_id=customer_id,
            template_id=template_id,
            value_minor=value_minor,
            reason=reason[:300],
            idempotency_key=key,
            issued_at=at,
            expires_at=at + timedelta(days=valid_days),
            redeemed_at=None,
        )
        await self._repo.add(session, coupon)
        await self._outbox.emit(
            session,
            "coupon.issued",
            tenant_id=tenant,
            customer_id=customer_id,
            payload=ev.CouponIssued(coupon_id=coupon.id, template_id=template_id, reason=reason),
        )
        return view_of(CouponView, coupon)

    async def redeem_coupon(
        self, session: AsyncSession, tenant: str, coupon_id: str, at: datetime
    ) -> CouponView:
        at = utc(at)
        redeemed = await self._repo.redeem(session, tenant, coupon_id, at)
        coupon = await self._repo.coupon(session, tenant, coupon_id)
        if coupon is None:
            raise NotFound("no such coupon", field="coupon_id")
        if not redeemed:
            if coupon.redeemed_at is not None:
                raise FailedPrecondition("coupon already redeemed", field="coupon_id")
            if coupon.revoked_at is not None:
                raise FailedPrecondition("coupon revoked", field="coupon_id")
            raise FailedPrecondition("coupon expired", field="coupon_id")
        return view_of(CouponView, coupon)

    # --- rewards from referral's events -------------------------------------------------------

    async def reward_granted(
        self, session: AsyncSession, tenant: str, customer_id: str, grant: RewardGrant, at: datetime
    ) -> None:
        """A referral reward: its points credited, or its coupon issued, once per reward."""
        if grant.points > 0:
            await self.post(
                session,
                tenant,
                customer_id,
                grant.points,
                source="referral",
                source_ref=grant.reward_id,
                reason=f"referral reward (level {grant.level})",
                key=f"{REWARD_KEY}{grant.reward_id}",
                at=at,
            )
        elif grant.coupon_template_id:
            await self.issue_coupon(
                session,
                tenant,
                customer_id,
                template_id=grant.coupon_template_id,
                value_minor=0,
                valid_days=30,
                reason="referral reward",
                key=f"{REWARD_KEY}{grant.reward_id}",
                at=at,
            )
