"""What other services' events say, applied to the activity model (and to loyalty when an order
is paid or refunded); the lifecycle is recomputed after each. Runs in the consumer's transaction;
the event's own time is the clock, so replays and late events land where they happened."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.activity.repository import ActivityRepository
from closedloop_retention.activity.rules import Rules, RulesRepository
from closedloop_retention.activity.service import ActivityService
from closedloop_retention.clock import utc, utc_or_none
from closedloop_retention.loyalty.service import LoyaltyService
from closedloop_retention.loyalty.views import RewardGrant
from closedloop_retention.models import ActivityRow, OrderItemRow, OrderRow


@dataclass(frozen=True)
class Contact:
    """An identity a message can reach the customer through."""

    kind: str
    scope: str
    value: str


@dataclass(frozen=True)
class Channel:
    """The acquisition channel a customer came through."""

    id: str
    kind: str


class ActivityIntake:
    def __init__(
        self,
        activity: ActivityService,
        loyalty: LoyaltyService,
        rules: RulesRepository,
        repository: ActivityRepository,
    ) -> None:
        self._activity = activity
        self._loyalty = loyalty
        self._rules = rules
        self._repo = repository

    # --- acquisition --------------------------------------------------------------------------

    async def touched(
        self,
        session: AsyncSession,
        tenant: str,
        customer_id: str,
        at: datetime,
        *,
        contact: Contact | None,
        channel: Channel | None,
        subscribed: bool | None,
        opens_window: bool = False,
    ) -> None:
        """A touch: contact and first channel kept, (un)subscribing followed; a scan or
        subscribe (`opens_window`) is an interaction as WeChat's 48-hour window counts it."""
        customer_id = await self._survivor(session, tenant, customer_id)
        row = await self._activity.touch(session, tenant, customer_id, at)
        last = utc_or_none(row.last_interaction_at)
        if opens_window and (last is None or utc(at) > last):
            row.last_interaction_at = utc(at)
        self._set_contact(row, contact)
        if channel is not None:
            self._set_channel(row, channel.id, channel.kind)
        if subscribed is not None:
            row.unsubscribed = not subscribed
        await self._activity.recompute(session, row, at)

    async def lead_captured(
        self,
        session: AsyncSession,
        tenant: str,
        customer_id: str,
        at: datetime,
        *,
        contact: Contact | None,
        channel: Channel,
        consent: bool,
        tags: Sequence[str],
    ) -> None:
        customer_id = await self._survivor(session, tenant, customer_id)
        row = await self._activity.touch(session, tenant, customer_id, at)
        self._set_contact(row, contact)
        self._set_channel(row, channel.id, channel.kind)
        if consent:
            row.consent = True
        await self._activity.add_tags(session, tenant, customer_id, tags, "lead")
        await self._activity.recompute(session, row, at)

    async def interaction_recorded(
        self, session: AsyncSession, tenant: str, customer_id: str, at: datetime
    ) -> None:
        customer_id = await self._survivor(session, tenant, customer_id)
        rules = await self._rules.get(session, tenant)
        row = await self._activity.touch(session, tenant, customer_id, at)
        self._interacted(row, at, rules)
        await self._activity.recompute(session, row, at, rules)

    # --- conversion ---------------------------------------------------------------------------

    async def lead_assigned(
        self, session: AsyncSession, tenant: str, customer_id: str, at: datetime, rep_id: str
    ) -> None:
        customer_id = await self._survivor(session, tenant, customer_id)
        row = await self._activity.touch(session, tenant, customer_id, at)
        if rep_id:
            row.owner_rep_id = rep_id

    async def followup_logged(
        self,
        session: AsyncSession,
        tenant: str,
        customer_id: str,
        at: datetime,
        *,
        rep_id: str,
        inbound: bool,
    ) -> None:
        customer_id = await self._survivor(session, tenant, customer_id)
        rules = await self._rules.get(session, tenant)
        row = await self._activity.touch(session, tenant, customer_id, at)
        if rep_id and not row.owner_rep_id:
            row.owner_rep_id = rep_id
        if inbound:
            self._interacted(row, at, rules)
        await self._activity.recompute(session, row, at, rules)

    async def ownership_started(
        self,
        session: AsyncSession,
        tenant: str,
        customer_id: str,
        at: datetime,
        *,
        rep_id: str,
        contact: Contact | None,
    ) -> None:
        customer_id = await self._survivor(session, tenant, customer_id)
        row = await self._activity.touch(session, tenant, customer_id, at)
        row.owner_rep_id = rep_id or row.owner_rep_id
        row.deleted_rep = False
        if not row.contact_value:
            self._set_contact(row, contact)
        await self._activity.recompute(session, row, at)

    async def ownership_ended(
        self,
        session: AsyncSession,
        tenant: str,
        customer_id: str,
        at: datetime,
        *,
        deleted_rep: bool,
    ) -> None:
        customer_id = await self._survivor(session, tenant, customer_id)
        row = await self._activity.touch(session, tenant, customer_id, at)
        if deleted_rep:
            row.deleted_rep = True
        await self._activity.recompute(session, row, at)

    async def order_paid(
        self,
        session: AsyncSession,
        tenant: str,
        customer_id: str,
        at: datetime,
        *,
        order_id: str,
        amount_minor: int,
        rep_id: str,
        items: list[dict[str, object]],
    ) -> None:
        """Counted once per order id; its points credited once."""
        customer_id = await self._survivor(session, tenant, customer_id)
        rules = await self._rules.get(session, tenant)
        row = await self._activity.touch(session, tenant, customer_id, at)
        if rep_id:
            row.owner_rep_id = rep_id
        amount = max(amount_minor, 0)
        counted = await self._count_order(session, row, order_id, amount, items=items, at=at)
        if counted:
            await self._loyalty.credit_order(
                session, tenant, customer_id, order_id, amount_minor=amount, rules=rules, at=at
            )
        await self._activity.recompute(session, row, at, rules)

    async def order_refunded(
        self,
        session: AsyncSession,
        tenant: str,
        customer_id: str,
        at: datetime,
        *,
        order_id: str,
        refunded_total_minor: int,
        full: bool,
    ) -> None:
        """Revenue and (for a full refund) the order count go back; points in proportion."""
        customer_id = await self._survivor(session, tenant, customer_id)
        row = await self._activity.touch(session, tenant, customer_id, at)
        order = await self._refund_order(session, row, order_id, refunded_total_minor, full)
        if order is not None:
            await self._loyalty.reverse_order(
                session,
                tenant,
                order.customer_id,
                order_id,
                refunded_total_minor=order.refunded_minor,
                order_amount_minor=order.amount_minor,
                at=at,
            )
        await self._activity.recompute(session, row, at)

    # --- referral -----------------------------------------------------------------------------

    async def referral_converted(
        self, session: AsyncSession, tenant: str, newcomer: str, referrer: str, at: datetime
    ) -> None:
        newcomer = newcomer and await self._survivor(session, tenant, newcomer)
        referrer = referrer and await self._survivor(session, tenant, referrer)
        if newcomer:
            await self._activity.touch(session, tenant, newcomer, at)
        if referrer:
            row = await self._activity.touch(session, tenant, referrer, at)
            row.referrals_made += 1

    async def reward_granted(
        self, session: AsyncSession, tenant: str, customer_id: str, grant: RewardGrant, at: datetime
    ) -> None:
        """The beneficiary seen, and their reward's points or coupon handed out once."""
        customer_id = await self._survivor(session, tenant, customer_id)
        await self._activity.touch(session, tenant, customer_id, at)
        await self._loyalty.reward_granted(session, tenant, customer_id, grant, at)

    # --- the activity row ---------------------------------------------------------------------

    async def _survivor(self, session: AsyncSession, tenant: str, customer_id: str) -> str:
        """An event still naming a merged-away id is about the survivor that holds its rows."""
        return await self._repo.survivor_of(session, tenant, customer_id)

    def _set_contact(self, row: ActivityRow, contact: Contact | None) -> None:
        if contact is not None and contact.value:
            row.contact_kind, row.contact_scope, row.contact_value = (
                contact.kind,
                contact.scope,
                contact.value,
            )

    def _set_channel(self, row: ActivityRow, channel_id: str, channel_kind: str) -> None:
        """The channel of acquisition: the first one that brought them."""
        if not row.channel_id and channel_id:
            row.channel_id = channel_id
            row.channel_kind = channel_kind

    def _interacted(self, row: ActivityRow, at: datetime, rules: Rules) -> None:
        at = utc(at)
        last = utc_or_none(row.last_interaction_at)
        if last is None or at > last:
            row.last_interaction_at = at
        hour = (at + timedelta(minutes=rules.utc_offset_minutes)).hour
        hours = list(row.active_hours or [0] * 24)
        hours[hour] += 1
        row.active_hours = hours

    async def _count_order(
        self,
        session: AsyncSession,
        row: ActivityRow,
        order_id: str,
        amount_minor: int,
        *,
        items: list[dict[str, object]],
        at: datetime,
    ) -> bool:
        """Counts a paid order once (by order id); False when it was already counted."""
        at = utc(at)
        if await self._repo.order(session, row.tenant_id, order_id) is not None:
            return False
        order = OrderRow(
            tenant_id=row.tenant_id,
            order_id=order_id,
            customer_id=row.customer_id,
            amount_minor=amount_minor,
            refunded_minor=0,
            paid_at=at,
            fully_refunded=False,
            items=items,
        )
        products = [
            OrderItemRow(
                tenant_id=row.tenant_id,
                order_id=order_id,
                sku=sku[:64],
                customer_id=row.customer_id,
                name=str(item.get("name") or "")[:200],
                category=str(item.get("category") or "")[:64],
            )
            for sku, item in {str(i.get("sku") or ""): i for i in items}.items()
            if sku
        ]
        self._repo.add_order(session, order, products)
        row.order_count += 1
        row.revenue_minor += amount_minor
        first = utc_or_none(row.first_order_at)
        last = utc_or_none(row.last_order_at)
        if first is None or at < first:
            row.first_order_at = at
        if last is None or at > last:
            row.last_order_at = at
        await session.flush()
        await self._repo.keep_value_inputs(session, row)
        return True

    async def _refund_order(
        self,
        session: AsyncSession,
        row: ActivityRow,
        order_id: str,
        refunded_total_minor: int,
        full: bool,
    ) -> OrderRow | None:
        order = await self._repo.order(session, row.tenant_id, order_id)
        if order is None:
            return None
        refunded_total = min(max(refunded_total_minor, order.refunded_minor), order.amount_minor)
        if full:
            refunded_total = order.amount_minor
        delta = refunded_total - order.refunded_minor
        order.refunded_minor = refunded_total
        row.revenue_minor = max(row.revenue_minor - delta, 0)
        if full and not order.fully_refunded:
            order.fully_refunded = True
            row.order_count = max(row.order_count - 1, 0)
            await self._repo.drop_items(session, row.tenant_id, order_id)
            await self._reset_order_dates(session, row)
        await session.flush()
        await self._repo.keep_value_inputs(session, row)
        return order

    async def _reset_order_dates(self, session: AsyncSession, row: ActivityRow) -> None:
        span = await self._repo.order_span(session, row.tenant_id, row.customer_id)
        row.first_order_at, row.last_order_at = span
