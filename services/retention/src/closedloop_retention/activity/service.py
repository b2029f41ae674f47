"""Applies what other services' events say to the activity model and recomputes the stage."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop.events.v1 import retention_events_pb2 as ev
from closedloop_retention import metrics
from closedloop_retention.activity import lifecycle
from closedloop_retention.activity.rules import Rules, RulesRepository
from closedloop_retention.clock import utc, utc_or_none
from closedloop_retention.models import (
    ActivityRow,
    OrderItemRow,
    OrderRow,
    StageChangeRow,
    TagRow,
)
from loopkit.errors import NotFound
from loopkit.events import Outbox

STAGE_PB = {
    lifecycle.INVESTIGATION: ev.LIFECYCLE_STAGE_INVESTIGATION,
    lifecycle.DEVELOPMENT: ev.LIFECYCLE_STAGE_DEVELOPMENT,
    lifecycle.STABLE: ev.LIFECYCLE_STAGE_STABLE,
    lifecycle.DECLINE: ev.LIFECYCLE_STAGE_DECLINE,
    lifecycle.CHURNED: ev.LIFECYCLE_STAGE_CHURNED,
}

# (session, tenant, activity row, rules, now): the win-back playbook when churn risk is raised;
# True when an offer was made.
WinBack = Callable[[AsyncSession, str, ActivityRow, Rules, datetime], Awaitable[bool]]


@dataclass(frozen=True)
class Contact:
    kind: str
    scope: str
    value: str


def facts(row: ActivityRow) -> lifecycle.Facts:
    return lifecycle.Facts(
        order_count=row.order_count,
        first_order_at=utc_or_none(row.first_order_at),
        last_order_at=utc_or_none(row.last_order_at),
        last_seen_at=utc(row.last_seen_at),
        unsubscribed=row.unsubscribed,
        deleted_rep=row.deleted_rep,
        win_back_attempts=row.win_back_attempts or 0,
        last_win_back_at=utc_or_none(row.last_win_back_at),
    )


class ActivityService:
    def __init__(self, outbox: Outbox, rules: RulesRepository, win_back: WinBack | None = None):
        self._outbox = outbox
        self._rules = rules
        self.win_back = win_back

    # --- reading -----------------------------------------------------------------------------

    async def get(self, session: AsyncSession, tenant: str, customer_id: str) -> ActivityRow:
        row = await session.get(ActivityRow, (tenant, customer_id))
        if row is None:
            raise NotFound("no activity known for this customer", field="customer_id")
        return row

    async def tags(self, session: AsyncSession, tenant: str, customer_id: str) -> list[str]:
        result = await session.scalars(
            select(TagRow.tag)
            .where(TagRow.tenant_id == tenant, TagRow.customer_id == customer_id)
            .order_by(TagRow.tag)
        )
        return list(result)

    async def history(
        self, session: AsyncSession, tenant: str, customer_id: str
    ) -> list[StageChangeRow]:
        result = await session.scalars(
            select(StageChangeRow)
            .where(StageChangeRow.tenant_id == tenant, StageChangeRow.customer_id == customer_id)
            .order_by(StageChangeRow.at, StageChangeRow.id)
        )
        return list(result)

    # --- the activity model --------------------------------------------------------------------

    async def touch(
        self, session: AsyncSession, tenant: str, customer_id: str, at: datetime
    ) -> ActivityRow:
        """The customer's row (created on first sight), last seen moved to `at`."""
        at = utc(at)
        row = await session.get(ActivityRow, (tenant, customer_id))
        if row is None:
            row = ActivityRow(
                tenant_id=tenant,
                customer_id=customer_id,
                first_seen_at=at,
                last_seen_at=at,
                order_count=0,
                revenue_minor=0,
                referrals_made=0,
                unsubscribed=False,
                deleted_rep=False,
                consent=False,
                channel_id="",
                channel_kind="",
                owner_rep_id="",
                contact_kind="",
                contact_scope="",
                contact_value="",
                active_hours=[0] * 24,
                stage=lifecycle.INVESTIGATION,
                stage_reason="",
                rfm_r=0,
                rfm_f=0,
                rfm_m=0,
                rfm_score=0,
                top_customer=False,
                churn_risk=0.0,
                next_review_at=at,
                win_back_attempts=0,
            )
            session.add(row)
            await session.flush()
            await self._record_change(
                session, row, "", lifecycle.INVESTIGATION, reason="first seen", at=at
            )
            row.stage_reason = "known customer, no order yet"
            row.stage_changed_at = at
        else:
            if at > utc(row.last_seen_at):
                row.last_seen_at = at
            if at < utc(row.first_seen_at):
                row.first_seen_at = at
        return row

    def set_contact(self, row: ActivityRow, contact: Contact | None) -> None:
        if contact is not None and contact.value:
            row.contact_kind, row.contact_scope, row.contact_value = (
                contact.kind,
                contact.scope,
                contact.value,
            )

    def set_channel(self, row: ActivityRow, channel_id: str, channel_kind: str) -> None:
        """The channel of acquisition: the first one that brought them."""
        if not row.channel_id and channel_id:
            row.channel_id = channel_id
            row.channel_kind = channel_kind

    async def interacted(self, row: ActivityRow, at: datetime, rules: Rules) -> None:
        at = utc(at)
        last = utc_or_none(row.last_interaction_at)
        if last is None or at > last:
            row.last_interaction_at = at
        hour = (at + timedelta(minutes=rules.utc_offset_minutes)).hour
        hours = list(row.active_hours or [0] * 24)
        hours[hour] += 1
        row.active_hours = hours

    async def add_tags(
        self, session: AsyncSession, tenant: str, customer_id: str, tags: Sequence[str], source: str
    ) -> None:
        existing = set(await self.tags(session, tenant, customer_id))
        for tag in dict.fromkeys(t.strip() for t in tags):
            if tag and tag not in existing and len(tag) <= 64:
                session.add(
                    TagRow(tenant_id=tenant, customer_id=customer_id, tag=tag, source=source)
                )
        await session.flush()

    async def remove_tags(
        self, session: AsyncSession, tenant: str, customer_id: str, tags: Sequence[str]
    ) -> None:
        if tags:
            await session.execute(
                delete(TagRow).where(
                    TagRow.tenant_id == tenant,
                    TagRow.customer_id == customer_id,
                    TagRow.tag.in_(list(tags)),
                )
            )

    async def order_paid(
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
        existing = await session.get(OrderRow, (row.tenant_id, order_id))
        if existing is not None:
            return False
        session.add(
            OrderRow(
                tenant_id=row.tenant_id,
                order_id=order_id,
                customer_id=row.customer_id,
                amount_minor=amount_minor,
                refunded_minor=0,
                paid_at=at,
                fully_refunded=False,
                items=items,
            )
        )
        for sku, item in {str(i.get("sku") or ""): i for i in items}.items():
            if sku:
                session.add(
                    OrderItemRow(
                        tenant_id=row.tenant_id,
                        order_id=order_id,
                        sku=sku[:64],
                        customer_id=row.customer_id,
                        name=str(item.get("name") or "")[:200],
                        category=str(item.get("category") or "")[:64],
                    )
                )
        row.order_count += 1
        row.revenue_minor += amount_minor
        first = utc_or_none(row.first_order_at)
        last = utc_or_none(row.last_order_at)
        if first is None or at < first:
            row.first_order_at = at
        if last is None or at > last:
            row.last_order_at = at
        await session.flush()
        return True

    async def order_refunded(
        self,
        session: AsyncSession,
        row: ActivityRow,
        order_id: str,
        refunded_total_minor: int,
        full: bool,
    ) -> OrderRow | None:
        order = await session.get(OrderRow, (row.tenant_id, order_id))
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
            await session.execute(
                delete(OrderItemRow).where(
                    OrderItemRow.tenant_id == row.tenant_id, OrderItemRow.order_id == order_id
                )
            )
            await self._reset_order_dates(session, row)
        await session.flush()
        return order

    async def _reset_order_dates(self, session: AsyncSession, row: ActivityRow) -> None:
        first, last = (
            await session.execute(
                select(func.min(OrderRow.paid_at), func.max(OrderRow.paid_at)).where(
                    OrderRow.tenant_id == row.tenant_id,
                    OrderRow.customer_id == row.customer_id,
                    OrderRow.fully_refunded.is_(False),
                )
            )
        ).one()
        row.first_order_at, row.last_order_at = first, last

    # --- lifecycle --------------------------------------------------------------------------

    async def recompute(
        self, session: AsyncSession, row: ActivityRow, now: datetime, rules: Rules | None = None
    ) -> bool:
        """Re-assess the stage and churn risk; emits stage.changed / churn_risk.raised."""
        rules = rules or await self._rules.get(session, row.tenant_id)
        last_order = utc_or_none(row.last_order_at)
        last_offer = utc_or_none(row.last_win_back_at)
        if last_offer is not None and last_order is not None and last_order >= last_offer:
            row.win_back_attempts, row.last_win_back_at = 0, None  # they came back
        f = facts(row)
        stage, reason = lifecycle.assess(f, rules, now)
        changed = stage != row.stage
        if changed:
            await self._record_change(session, row, row.stage, stage, reason=reason, at=now)
            row.stage = stage
            row.stage_changed_at = utc(now)
        row.stage_reason = reason
        row.next_review_at = lifecycle.next_review(f, rules, utc(now))
        score, reasons = lifecycle.churn_risk(f, rules, now)
        was_raised = row.churn_risk_raised_at is not None
        row.churn_risk = round(score, 4)
        high = score >= rules.churn_risk_threshold and stage != lifecycle.CHURNED
        offer = False
        if high and not was_raised:
            row.churn_risk_raised_at = utc(now)
            await self._outbox.emit(
                session,
                "churn_risk.raised",
                tenant_id=row.tenant_id,
                customer_id=row.customer_id,
                payload=ev.ChurnRiskRaised(score=score, reasons=reasons),
            )
            offer = True
        elif high and f.last_win_back_at is not None:
            lapsed = f.last_win_back_at + timedelta(days=rules.win_back_valid_days)
            offer = utc(now) >= lapsed and f.win_back_attempts < rules.win_back_max_attempts
        elif score < rules.churn_risk_threshold and was_raised:
            row.churn_risk_raised_at = None
        offered = (
            offer
            and self.win_back is not None
            and await self.win_back(session, row.tenant_id, row, rules, now)
        )
        if offered:
            row.win_back_attempts = (row.win_back_attempts or 0) + 1
            row.last_win_back_at = utc(now)
            row.next_review_at = lifecycle.next_review(facts(row), rules, utc(now))
        return changed

    async def review_all(self, session: AsyncSession, tenant: str, now: datetime) -> None:
        """Every customer of the tenant is due for review (after its rules changed)."""
        await session.execute(
            update(ActivityRow)
            .where(ActivityRow.tenant_id == tenant)
            .values(next_review_at=utc(now))
            .execution_options(synchronize_session=False)
        )

    async def _record_change(
        self,
        session: AsyncSession,
        row: ActivityRow,
        old: str,
        new: str,
        *,
        reason: str,
        at: datetime,
    ) -> None:
        session.add(
            StageChangeRow(
                id=str(ULID()),
                tenant_id=row.tenant_id,
                customer_id=row.customer_id,
                from_stage=old,
                to_stage=new,
                reason=reason[:300],
                at=utc(at),
            )
        )
        await self._outbox.emit(
            session,
            "stage.changed",
            tenant_id=row.tenant_id,
            customer_id=row.customer_id,
            payload=ev.StageChanged(
                from_stage=STAGE_PB.get(old, ev.LIFECYCLE_STAGE_UNSPECIFIED),
                to_stage=STAGE_PB[new],
                reason=reason,
            ),
        )
        metrics.stage_changes.add(1, {"to_stage": new})

    async def sweep(
        self, session: AsyncSession, tenant: str, now: datetime, *, batch: int = 500
    ) -> tuple[int, int]:
        """Recompute the customers of a tenant whose review moment has come (an index range, in
        keyset batches): time passing moves stable customers into decline, and so on."""
        rules = await self._rules.get(session, tenant)
        now = utc(now)
        examined = changed = 0
        # Keyset over the review index; a recomputed row moves its moment into the future (or
        # clears it), so it leaves the due range by itself.
        after: tuple[datetime, str] | None = None
        while True:
            query = select(ActivityRow).where(
                ActivityRow.tenant_id == tenant, ActivityRow.next_review_at <= now
            )
            if after is not None:
                query = query.where(
                    or_(
                        ActivityRow.next_review_at > after[0],
                        and_(
                            ActivityRow.next_review_at == after[0],
                            ActivityRow.customer_id > after[1],
                        ),
                    )
                )
            rows = list(
                await session.scalars(
                    query.order_by(ActivityRow.next_review_at, ActivityRow.customer_id).limit(batch)
                )
            )
            if not rows:
                break
            last = rows[-1]
            assert last.next_review_at is not None
            after = (last.next_review_at, last.customer_id)
            # One flush per batch instead of one per emitted event.
            with session.no_autoflush:
                for row in rows:
                    examined += 1
                    if await self.recompute(session, row, now, rules):
                        changed += 1
            await session.flush()
        return examined, changed
