"""Opportunities through the tenant's pipeline stages, and the orders that close them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1 import conversion_events_pb2 as ev
from closedloop_conversion import metrics
from closedloop_conversion.common import new_id, now, optional, required
from closedloop_conversion.models import OpportunityRow, OrderRow, PipelineRow, RefundRow
from closedloop_conversion.pipeline.money import (
    Item,
    Money,
    items_to_pb,
    money_pb,
    validate_items,
    validate_money,
)
from closedloop_conversion.pipeline.repository import PipelineRepository
from closedloop_conversion.pipeline.views import OpportunityView, OrderView
from closedloop_conversion.sales.repository import SalesRepository
from closedloop_conversion.sales.service import SalesService
from loopkit.errors import FailedPrecondition, InvalidArgument, NotFound
from loopkit.events import Outbox
from loopkit.uow import on_commit
from loopkit.views import view_of

DEFAULT_STAGES = ["new", "contacted", "qualified", "proposal", "won", "lost"]
CLOSING_STAGES = ("won", "lost")
MAX_STAGES = 20


class OrderService:
    def __init__(self, outbox: Outbox, sales: SalesService) -> None:
        self._outbox = outbox
        self._reps = SalesRepository()
        self._repo = PipelineRepository()
        self._sales = sales

    # --- stages ------------------------------------------------------------------------------

    async def stages(self, session: AsyncSession, tenant: str) -> list[str]:
        row = await self._repo.pipeline(session, tenant)
        return list(row.stages) if row is not None else list(DEFAULT_STAGES)

    async def set_stages(
        self, session: AsyncSession, tenant: str, stages: Sequence[str]
    ) -> list[str]:
        names = [required(s, "stages", max_len=64).lower() for s in stages]
        if len(set(names)) != len(names):
            raise InvalidArgument("stage names must be unique", field="stages")
        if len(names) > MAX_STAGES:
            raise InvalidArgument(f"at most {MAX_STAGES} stages", field="stages")
        if not all(c in names for c in CLOSING_STAGES) or len(names) < 3:
            raise InvalidArgument("need at least one open stage plus won and lost", field="stages")
        ordered = [n for n in names if n not in CLOSING_STAGES] + list(CLOSING_STAGES)
        row = await self._repo.pipeline(session, tenant)
        if row is None:
            row = PipelineRow(tenant_id=tenant)
            self._repo.add(session, row)
        row.stages = ordered
        row.updated_at = now()
        await session.flush()
        return ordered

    # --- opportunities -----------------------------------------------------------------------

    async def create_opportunity(
        self,
        session: AsyncSession,
        tenant: str,
        *,
        customer_id: str,
        rep_id: str,
        lead_id: str,
        title: str,
        expected: Money | None,
    ) -> OpportunityView:
        customer = required(customer_id, "customer_id", max_len=26)
        lead = None
        if lead_id:
            lead = await self._reps.lead(session, tenant, lead_id)
            if lead is None:
                raise NotFound("no such lead", field="lead_id")
        rep_id = rep_id or (lead.rep_id if lead and lead.rep_id else "")
        rep_id = rep_id or (await self._repo.owner_rep_id(session, tenant, customer) or "")
        if not rep_id:
            raise InvalidArgument("the customer has no owner: name a rep", field="rep_id")
        rep = await self._reps.rep(session, tenant, rep_id)
        if rep is None:
            raise NotFound("no such rep", field="rep_id")
        if rep.status != "active":
            raise FailedPrecondition("the rep has departed", field="rep_id")
        money = validate_money(expected, "expected_amount") if expected else Money("CNY", 0)
        stages = await self.stages(session, tenant)
        at = now()
        row = OpportunityRow(
            id=new_id(),
            tenant_id=tenant,
            customer_id=customer,
            rep_id=rep.id,
            lead_id=lead.id if lead else None,
            title=optional(title, "title", max_len=300),
            stage=stages[0],
            currency=money.currency,
            expected_minor=money.amount_minor,
            created_at=at,
            updated_at=at,
            closed_at=None,
        )
        self._repo.add(session, row)
        await session.flush()
        return view_of(OpportunityView, row)

    async def move_opportunity(
        self, session: AsyncSession, tenant: str, opportunity_id: str, stage: str
    ) -> OpportunityView:
        row = await self._repo.opportunity(session, tenant, opportunity_id)
        if row is None:
            raise NotFound("no such opportunity", field="opportunity_id")
        stage = required(stage, "stage", max_len=64).lower()
        if stage not in await self.stages(session, tenant):
            raise InvalidArgument("not a stage of this tenant's pipeline", field="stage")
        if row.stage == stage:
            return view_of(OpportunityView, row)
        if row.closed_at is not None:
            raise FailedPrecondition(f"the opportunity is closed ({row.stage})", field="stage")
        row.stage = stage
        row.updated_at = now()
        if stage in CLOSING_STAGES:
            row.closed_at = row.updated_at
            if row.lead_id:
                lead = await self._reps.lead(session, tenant, row.lead_id)
                if lead is not None and lead.status in ("assigned", "unassigned"):
                    await self._sales.close_lead(session, tenant, lead.id, stage)
        await session.flush()
        return view_of(OpportunityView, row)

    # --- orders ------------------------------------------------------------------------------

    async def record_order(
        self,
        session: AsyncSession,
        tenant: str,
        *,
        customer_id: str,
        rep_id: str,
        opportunity_id: str,
        lead_id: str,
        items: Sequence[Item],
        amount: Money,
        paid_at: datetime | None,
    ) -> OrderView:
        customer = required(customer_id, "customer_id", max_len=26)
        money = validate_money(amount, "amount")
        item_rows = validate_items(items, money.currency)
        opp = None
        if opportunity_id:
            opp = await self._repo.opportunity(session, tenant, opportunity_id)
            if opp is None:
                raise NotFound("no such opportunity", field="opportunity_id")
            if opp.customer_id != customer:
                raise InvalidArgument("belongs to another customer", field="opportunity_id")
        lead_id = lead_id or (opp.lead_id if opp and opp.lead_id else "")
        lead = None
        if lead_id:
            lead = await self._reps.lead(session, tenant, lead_id)
            if lead is None:
                raise NotFound("no such lead", field="lead_id")
        else:
            lead = await self._repo.latest_lead(session, tenant, customer)
            lead_id = lead.id if lead is not None else ""
        rep_id = rep_id or (opp.rep_id if opp else "")
        rep_id = rep_id or (await self._repo.owner_rep_id(session, tenant, customer) or "")
        rep_id = rep_id or (lead.rep_id if lead is not None and lead.rep_id else "")
        if rep_id and await self._reps.rep(session, tenant, rep_id) is None:
            raise NotFound("no such rep", field="rep_id")
        row = OrderRow(
            id=new_id(),
            tenant_id=tenant,
            customer_id=customer,
            rep_id=rep_id or None,
            opportunity_id=opp.id if opp else None,
            lead_id=lead_id or None,
            items=item_rows,
            currency=money.currency,
            amount_minor=money.amount_minor,
            refunded_minor=0,
            status="placed",
            placed_at=now(),
            paid_at=None,
        )
        self._repo.add(session, row)
        await session.flush()
        await self._outbox.emit(
            session,
            "order.placed",
            tenant_id=tenant,
            customer_id=customer,
            payload=ev.OrderPlaced(
                order_id=row.id,
                opportunity_id=row.opportunity_id or "",
                rep_id=row.rep_id or "",
                amount=money_pb(row.currency, row.amount_minor),
                items=items_to_pb(item_rows),
            ),
        )
        if paid_at is not None:
            await self._paid(session, row, paid_at)
        return view_of(OrderView, row)

    async def mark_paid(
        self, session: AsyncSession, tenant: str, order_id: str, paid_at: datetime | None
    ) -> OrderView:
        row = await self._repo.order(session, tenant, order_id)
        if row is None:
            raise NotFound("no such order", field="order_id")
        if row.paid_at is not None:
            return view_of(OrderView, row)  # paid already: no second order.paid
        await self._paid(session, row, paid_at or now())
        return view_of(OrderView, row)

    async def _paid(self, session: AsyncSession, row: OrderRow, paid_at: datetime) -> None:
        row.paid_at = paid_at
        row.status = "paid"
        repeat = (
            await self._repo.paid_orders_before(session, row.tenant_id, row.customer_id, row.id) > 0
        )
        await session.flush()
        if row.opportunity_id:
            opp = await self._repo.opportunity(session, row.tenant_id, row.opportunity_id)
            if opp is not None and opp.closed_at is None:
                opp.stage, opp.closed_at, opp.updated_at = "won", paid_at, now()
        if row.lead_id:
            lead = await self._reps.lead(session, row.tenant_id, row.lead_id)
            if lead is not None and lead.status in ("assigned", "unassigned"):
                await self._sales.close_lead(session, row.tenant_id, lead.id, "won")
        await self._outbox.emit(
            session,
            "order.paid",
            tenant_id=row.tenant_id,
            customer_id=row.customer_id,
            payload=ev.OrderPaid(
                order_id=row.id,
                rep_id=row.rep_id or "",
                amount=money_pb(row.currency, row.amount_minor),
                items=items_to_pb(row.items),
                lead_id=row.lead_id or "",
                opportunity_id=row.opportunity_id or "",
                repeat_purchase=repeat,
            ),
        )
        labels = {"repeat": "true" if repeat else "false"}
        on_commit(session, partial(metrics.orders_paid.add, 1, labels))

    async def refund(
        self,
        session: AsyncSession,
        tenant: str,
        order_id: str,
        amount: Money | None,
        reason: str,
    ) -> OrderView:
        row = await self._repo.order(session, tenant, order_id)
        if row is None:
            raise NotFound("no such order", field="order_id")
        if row.paid_at is None:
            raise FailedPrecondition("the order is not paid", field="order_id")
        refundable = row.amount_minor - row.refunded_minor
        if amount is None:
            value = refundable
        else:
            money = validate_money(amount, "amount", allow_zero=False)
            if money.currency != row.currency:
                raise InvalidArgument("must be the order's currency", field="amount.currency")
            value = money.amount_minor
        if value <= 0:
            raise FailedPrecondition("nothing left to refund", field="amount")
        if value > refundable:
            raise FailedPrecondition(
                f"refund larger than what was paid and not yet refunded ({refundable})",
                field="amount",
            )
        row.refunded_minor += value
        full = row.refunded_minor == row.amount_minor
        row.status = "refunded" if full else "partially_refunded"
        self._repo.add(
            session,
            RefundRow(
                id=new_id(),
                tenant_id=tenant,
                order_id=row.id,
                rep_id=row.rep_id,
                amount_minor=value,
                reason=optional(reason, "reason", max_len=500),
                at=now(),
            ),
        )
        await session.flush()
        await self._outbox.emit(
            session,
            "order.refunded",
            tenant_id=tenant,
            customer_id=row.customer_id,
            payload=ev.OrderRefunded(
                order_id=row.id,
                refunded=money_pb(row.currency, value),
                full=full,
                items=items_to_pb(row.items),
                rep_id=row.rep_id or "",
                lead_id=row.lead_id or "",
                refunded_total=money_pb(row.currency, row.refunded_minor),
                order_amount=money_pb(row.currency, row.amount_minor),
            ),
        )
        return view_of(OrderView, row)
