"""The RetentionService gRPC servicer. Each call is one unit of work around domain calls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop.retention.v1 import retention_pb2 as pb
from closedloop.retention.v1 import retention_pb2_grpc
from closedloop_retention.activity import lifecycle, value
from closedloop_retention.activity.rules import RulesRepository
from closedloop_retention.activity.service import STAGE_PB, ActivityService, facts
from closedloop_retention.broadcasts.service import BroadcastService
from closedloop_retention.clock import now
from closedloop_retention.loyalty.service import LoyaltyService
from closedloop_retention.segments.service import SegmentService
from closedloop_retention.suggestions import service as suggestions
from closedloop_retention.transport import convert
from loopkit.db import transact
from loopkit.errors import InvalidArgument
from loopkit.tenancy import require_tenant

T = TypeVar("T")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RetentionService"].full_name
MAX_LIST = 500
# Safe to retry: reads, and writes that carry their idempotency key or set a value.
IDEMPOTENT_METHODS = [
    (SERVICE_NAME, m)
    for m in (
        "GetCustomerActivity",
        "GetLifecycle",
        "SetLifecycleRules",
        "SweepLifecycle",
        "GetLoyaltyAccount",
        "RedeemPoints",
        "AdjustPoints",
        "GetCustomerValue",
        "ListTopCustomers",
        "DefineSegment",
        "PreviewSegment",
        "GetBroadcast",
        "TagCustomer",
        "GetSuggestions",
    )
]


def _customer(customer_id: str) -> str:
    if not customer_id or len(customer_id) > 26:
        raise InvalidArgument("must be a customer id (1-26 characters)", field="customer_id")
    return customer_id


class RetentionServicer(retention_pb2_grpc.RetentionServiceServicer):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        after_commit: Callable[[], None],
        *,
        rules: RulesRepository,
        activity: ActivityService,
        loyalty: LoyaltyService,
        segments: SegmentService,
        broadcasts: BroadcastService,
    ) -> None:
        self._sessions = sessions
        self._after_commit = after_commit
        self._rules = rules
        self._activity = activity
        self._loyalty = loyalty
        self._segments = segments
        self._broadcasts = broadcasts

    async def _tx(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        return await transact(self._sessions, work, after_commit=self._after_commit)

    # --- activity and lifecycle ---------------------------------------------------------------

    async def GetCustomerActivity(
        self, request: pb.GetCustomerActivityRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCustomerActivityResponse:
        tenant = require_tenant(request.tenant_id)
        customer = _customer(request.customer_id)

        async def work(s: AsyncSession) -> pb.CustomerActivity:
            row = await self._activity.get(s, tenant, customer)
            tags = await self._activity.tags(s, tenant, customer)
            cycle = lifecycle.purchase_cycle_days(facts(row))
            return convert.activity_to_pb(row, tags, cycle)

        return pb.GetCustomerActivityResponse(activity=await self._tx(work))

    async def GetLifecycle(
        self, request: pb.GetLifecycleRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetLifecycleResponse:
        tenant = require_tenant(request.tenant_id)
        customer = _customer(request.customer_id)

        async def work(s: AsyncSession) -> pb.GetLifecycleResponse:
            row = await self._activity.get(s, tenant, customer)
            history = await self._activity.history(s, tenant, customer)
            return pb.GetLifecycleResponse(
                stage=STAGE_PB[row.stage],
                reason=row.stage_reason,
                history=[convert.change_to_pb(h) for h in history],
            )

        return await self._tx(work)

    async def SetLifecycleRules(
        self, request: pb.SetLifecycleRulesRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetLifecycleRulesResponse:
        tenant = require_tenant(request.tenant_id)
        changes = convert.rule_changes(request.rules, list(request.fields))

        async def work(s: AsyncSession) -> pb.SetLifecycleRulesResponse:
            current = await self._rules.get(s, tenant)
            updated = current.updated(changes)
            await self._rules.put(s, tenant, updated)
            await self._activity.review_all(s, tenant, now())
            return pb.SetLifecycleRulesResponse(rules=convert.rules_to_pb(updated))

        return await self._tx(work)

    async def SweepLifecycle(
        self, request: pb.SweepLifecycleRequest, context: grpc.aio.ServicerContext
    ) -> pb.SweepLifecycleResponse:
        tenant = require_tenant(request.tenant_id)
        at = convert.as_of(request)
        examined, changed = await self._tx(lambda s: self._activity.sweep(s, tenant, at))
        return pb.SweepLifecycleResponse(examined=examined, changed=changed)

    # --- loyalty ------------------------------------------------------------------------------

    async def GetLoyaltyAccount(
        self, request: pb.GetLoyaltyAccountRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetLoyaltyAccountResponse:
        tenant = require_tenant(request.tenant_id)
        customer = _customer(request.customer_id)
        limit = request.ledger_limit or 50
        if not 1 <= limit <= MAX_LIST:
            raise InvalidArgument(f"must be within 1..{MAX_LIST}", field="ledger_limit")

        async def work(s: AsyncSession) -> pb.GetLoyaltyAccountResponse:
            account = await self._loyalty.find_account(s, tenant, customer)
            rules = await self._rules.get(s, tenant)
            balance = account.balance if account else 0
            lifetime = account.lifetime_points if account else 0
            ledger = await self._loyalty.ledger(s, tenant, customer, limit)
            coupons = await self._loyalty.coupons(s, tenant, customer)
            return pb.GetLoyaltyAccountResponse(
                customer_id=customer,
                balance=balance,
                lifetime_points=lifetime,
                tier=convert.tier_to_pb(rules.tier_for(lifetime)),
                ledger=[convert.ledger_to_pb(e) for e in ledger],
                coupons=[convert.coupon_to_pb(c) for c in coupons],
            )

        return await self._tx(work)

    async def RedeemPoints(
        self, request: pb.RedeemPointsRequest, context: grpc.aio.ServicerContext
    ) -> pb.RedeemPointsResponse:
        tenant = require_tenant(request.tenant_id)
        customer = _customer(request.customer_id)
        if request.points <= 0:
            raise InvalidArgument("must be positive", field="points")
        posted = await self._tx(
            lambda s: self._loyalty.post(
                s,
                tenant,
                customer,
                -request.points,
                source="redeem",
                source_ref=request.idempotency_key,
                reason=request.reason or "redeemed",
                key=f"redeem:{request.idempotency_key}" if request.idempotency_key else "",
                at=now(),
            )
        )
        return pb.RedeemPointsResponse(
            entry=convert.ledger_to_pb(posted.entry), balance=posted.balance
        )

    async def AdjustPoints(
        self, request: pb.AdjustPointsRequest, context: grpc.aio.ServicerContext
    ) -> pb.AdjustPointsResponse:
        tenant = require_tenant(request.tenant_id)
        customer = _customer(request.customer_id)
        if not request.reason.strip():
            raise InvalidArgument("a manual adjustment needs a reason", field="reason")
        posted = await self._tx(
            lambda s: self._loyalty.post(
                s,
                tenant,
                customer,
                request.points,
                source="manual",
                source_ref=request.idempotency_key,
                reason=request.reason,
                key=f"manual:{request.idempotency_key}" if request.idempotency_key else "",
                at=now(),
            )
        )
        return pb.AdjustPointsResponse(
            entry=convert.ledger_to_pb(posted.entry), balance=posted.balance
        )

    async def IssueCoupon(
        self, request: pb.IssueCouponRequest, context: grpc.aio.ServicerContext
    ) -> pb.IssueCouponResponse:
        tenant = require_tenant(request.tenant_id)
        customer = _customer(request.customer_id)
        coupon = await self._tx(
            lambda s: self._loyalty.issue_coupon(
                s,
                tenant,
                customer,
                template_id=request.template_id,
                value_minor=request.value_minor,
                valid_days=request.valid_days or 30,
                reason=request.reason,
                key=request.idempotency_key,
                at=now(),
            )
        )
        return pb.IssueCouponResponse(coupon=convert.coupon_to_pb(coupon))

    async def RedeemCoupon(
        self, request: pb.RedeemCouponRequest, context: grpc.aio.ServicerContext
    ) -> pb.RedeemCouponResponse:
        tenant = require_tenant(request.tenant_id)
        if not request.coupon_id:
            raise InvalidArgument("a coupon id is required", field="coupon_id")
        at = convert.as_of(request)
        coupon = await self._tx(
            lambda s: self._loyalty.redeem_coupon(s, tenant, request.coupon_id, at)
        )
        return pb.RedeemCouponResponse(coupon=convert.coupon_to_pb(coupon, at))

    # --- value --------------------------------------------------------------------------------

    async def GetCustomerValue(
        self, request: pb.GetCustomerValueRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCustomerValueResponse:
        tenant = require_tenant(request.tenant_id)
        customer = _customer(request.customer_id)
        row = await self._tx(lambda s: self._activity.get(s, tenant, customer))
        return pb.GetCustomerValueResponse(value=convert.value_to_pb(row))

    async def ListTopCustomers(
        self, request: pb.ListTopCustomersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTopCustomersResponse:
        tenant = require_tenant(request.tenant_id)
        limit = request.limit or 20
        if not 1 <= limit <= MAX_LIST:
            raise InvalidArgument(f"must be within 1..{MAX_LIST}", field="limit")

        async def work(s: AsyncSession) -> list[pb.CustomerValue]:
            if request.recompute:
                await value.recompute_rfm(s, tenant)
            rows = await value.top_customers(s, tenant, limit)
            return [convert.value_to_pb(r) for r in rows]

        return pb.ListTopCustomersResponse(customers=await self._tx(work))

    # --- segments -----------------------------------------------------------------------------

    async def DefineSegment(
        self, request: pb.DefineSegmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.DefineSegmentResponse:
        tenant = require_tenant(request.tenant_id)
        row = await self._tx(
            lambda s: self._segments.define(s, tenant, request.name, request.expression, now())
        )
        return pb.DefineSegmentResponse(
            segment=pb.Segment(
                segment_id=row.id,
                name=row.name,
                expression=row.expression,
                created_at=convert.ts(row.created_at),
            )
        )

    async def PreviewSegment(
        self, request: pb.PreviewSegmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.PreviewSegmentResponse:
        tenant = require_tenant(request.tenant_id)
        at = convert.as_of(request)
        sample = request.sample_size if request.sample_size else 10

        async def work(s: AsyncSession) -> tuple[int, list[str]]:
            _, _, node = await self._segments.resolve(
                s, tenant, request.segment_id, request.expression
            )
            return await self._segments.preview(s, tenant, node, at, sample)

        count, ids = await self._tx(work)
        return pb.PreviewSegmentResponse(count=count, sample_customer_ids=ids)

    # --- broadcasts ---------------------------------------------------------------------------

    async def ScheduleBroadcast(
        self, request: pb.ScheduleBroadcastRequest, context: grpc.aio.ServicerContext
    ) -> pb.ScheduleBroadcastResponse:
        tenant = require_tenant(request.tenant_id)
        at = convert.as_of(request)
        start = (
            request.window_start.ToDatetime(tzinfo=at.tzinfo)
            if request.HasField("window_start")
            else None
        )
        end = (
            request.window_end.ToDatetime(tzinfo=at.tzinfo)
            if request.HasField("window_end")
            else None
        )

        async def work(s: AsyncSession) -> pb.Broadcast:
            row = await self._broadcasts.schedule(
                s,
                tenant,
                segment_id=request.segment_id,
                expression=request.expression,
                template=request.template,
                window_start=start,
                window_end=end,
                key=request.idempotency_key,
                now=at,
            )
            return convert.broadcast_to_pb(row, await self._broadcasts.stats(s, row.id))

        return pb.ScheduleBroadcastResponse(broadcast=await self._tx(work))

    async def GetBroadcast(
        self, request: pb.GetBroadcastRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetBroadcastResponse:
        tenant = require_tenant(request.tenant_id)
        if not request.broadcast_id:
            raise InvalidArgument("a broadcast id is required", field="broadcast_id")

        async def work(s: AsyncSession) -> pb.GetBroadcastResponse:
            row = await self._broadcasts.get(s, tenant, request.broadcast_id)
            stats = await self._broadcasts.stats(s, row.id)
            recipients = (
                await self._broadcasts.recipients(s, row.id) if request.include_recipients else []
            )
            return pb.GetBroadcastResponse(
                broadcast=convert.broadcast_to_pb(row, stats),
                recipients=[convert.recipient_to_pb(r) for r in recipients],
            )

        return await self._tx(work)

    async def TagCustomer(
        self, request: pb.TagCustomerRequest, context: grpc.aio.ServicerContext
    ) -> pb.TagCustomerResponse:
        tenant = require_tenant(request.tenant_id)
        customer = _customer(request.customer_id)
        for tag in request.add:
            if not tag.strip() or len(tag) > 64:
                raise InvalidArgument("tags are 1-64 characters", field="add")

        async def work(s: AsyncSession) -> list[str]:
            await self._activity.touch(s, tenant, customer, now())
            await self._activity.add_tags(s, tenant, customer, list(request.add), "manual")
            await self._activity.remove_tags(s, tenant, customer, list(request.remove))
            return await self._activity.tags(s, tenant, customer)

        return pb.TagCustomerResponse(tags=await self._tx(work))

    async def GetSuggestions(
        self, request: pb.GetSuggestionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSuggestionsResponse:
        tenant = require_tenant(request.tenant_id)
        customer = _customer(request.customer_id)
        limit = request.limit or 5
        if not 1 <= limit <= 50:
            raise InvalidArgument("must be within 1..50", field="limit")

        async def work(s: AsyncSession) -> pb.GetSuggestionsResponse:
            row = await self._activity.get(s, tenant, customer)
            found = await suggestions.for_customer(s, tenant, customer, limit)
            return pb.GetSuggestionsResponse(
                owner_rep_id=row.owner_rep_id,
                suggestions=[
                    pb.Suggestion(
                        sku=x.sku, name=x.name, category=x.category, co_buyers=x.co_buyers
                    )
                    for x in found
                ],
            )

        return await self._tx(work)


def register(servicer: RetentionServicer) -> Callable[[grpc.aio.Server], None]:
    def add(server: grpc.aio.Server) -> None:
        retention_pb2_grpc.add_RetentionServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]

    return add
