"""The RetentionService gRPC servicer. Each call is one unit of work around domain calls (the
calls that only read a reading one, `UnitOfWork.read`: on SQLite they never wait for a writer)."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from closedloop.retention.v1 import retention_pb2 as pb
from closedloop.retention.v1 import retention_pb2_grpc
from closedloop_retention.activity.service import STAGE_PB, ActivityService
from closedloop_retention.broadcasts.service import BroadcastService
from closedloop_retention.clock import now
from closedloop_retention.consent.service import ConsentService
from closedloop_retention.customer360.service import Customer360Service
from closedloop_retention.funnel.service import FunnelService
from closedloop_retention.loyalty.service import MANUAL_KEY, REDEEM_KEY, LoyaltyService
from closedloop_retention.segments.service import SegmentService
from closedloop_retention.suggestions.service import SuggestionService
from closedloop_retention.transport import convert, convert_360
from closedloop_retention.transport.grpc_offers import IDEMPOTENT, OffersAndConsentRpcs
from closedloop_retention.transport.workers import review_tenant
from closedloop_retention.winback.service import WinBackService
from loopkit.errors import InvalidArgument
from loopkit.tenancy import require_tenant
from loopkit.uow import UnitOfWork

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
        "GetFunnel",
        "GetFunnelCohorts",
        "GetCustomer360",
        *IDEMPOTENT,
    )
]


def _customer(customer_id: str) -> str:
    if not customer_id or len(customer_id) > 26:
        raise InvalidArgument("must be a customer id (1-26 characters)", field="customer_id")
    return customer_id


class RetentionServicer(OffersAndConsentRpcs, retention_pb2_grpc.RetentionServiceServicer):
    """Each call: validate and convert the request, run one use case in a unit of work, convert
    its views into the response."""

    def __init__(
        self,
        uow: UnitOfWork,
        *,
        activity: ActivityService,
        loyalty: LoyaltyService,
        segments: SegmentService,
        broadcasts: BroadcastService,
        suggestions: SuggestionService,
        funnel: FunnelService,
        offers: WinBackService,
        consent: ConsentService,
        c360: Customer360Service,
    ) -> None:
        self._uow = uow
        self._c360 = c360
        self._offers = offers
        self._consent = consent
        self._activity = activity
        self._loyalty = loyalty
        self._segments = segments
        self._broadcasts = broadcasts
        self._suggestions = suggestions
        self._funnel = funnel

    # --- activity and lifecycle ---------------------------------------------------------------

    async def GetCustomerActivity(
        self, request: pb.GetCustomerActivityRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCustomerActivityResponse:
        tenant = require_tenant(request.tenant_id)
        customer = _customer(request.customer_id)
        found = await self._uow.read(lambda s: self._activity.activity_of(s, tenant, customer))
        return pb.GetCustomerActivityResponse(activity=convert.activity_to_pb(found))

    async def GetLifecycle(
        self, request: pb.GetLifecycleRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetLifecycleResponse:
        tenant = require_tenant(request.tenant_id)
        customer = _customer(request.customer_id)
        found = await self._uow.read(lambda s: self._activity.lifecycle_of(s, tenant, customer))
        return pb.GetLifecycleResponse(
            stage=STAGE_PB[found.stage],
            reason=found.reason,
            history=[convert.change_to_pb(h) for h in found.history],
        )

    async def SetLifecycleRules(
        self, request: pb.SetLifecycleRulesRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetLifecycleRulesResponse:
        tenant = require_tenant(request.tenant_id)
        changes = convert.rule_changes(request.rules, list(request.fields))
        updated = await self._uow.run(lambda s: self._activity.set_rules(s, tenant, changes, now()))
        return pb.SetLifecycleRulesResponse(rules=convert.rules_to_pb(updated))

    async def SweepLifecycle(
        self, request: pb.SweepLifecycleRequest, context: grpc.aio.ServicerContext
    ) -> pb.SweepLifecycleResponse:
        tenant = require_tenant(request.tenant_id)
        at = convert.as_of(request)
        # A rules change's review still pending runs first, as in the periodic round: the due
        # sweep alone would decide the rest of the customers under the rules they were last
        # reviewed with (and the review marker would wait for the worker's next round).
        reviewed, review_changes = await review_tenant(self._uow, self._activity, tenant, at)
        examined, changed = await self._uow.run(lambda s: self._activity.sweep(s, tenant, at))
        return pb.SweepLifecycleResponse(
            examined=reviewed + examined, changed=review_changes + changed
        )

    # --- loyalty ------------------------------------------------------------------------------

    async def GetLoyaltyAccount(
        self, request: pb.GetLoyaltyAccountRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetLoyaltyAccountResponse:
        tenant = require_tenant(request.tenant_id)
        customer = _customer(request.customer_id)
        limit = request.ledger_limit or 50
        if not 1 <= limit <= MAX_LIST:
            raise InvalidArgument(f"must be within 1..{MAX_LIST}", field="ledger_limit")

        account = await self._uow.read(
            lambda s: self._loyalty.account_of(s, tenant, customer, limit),
            one_snapshot=True,  # the balance and the ledger must agree
        )
        return pb.GetLoyaltyAccountResponse(
            customer_id=account.customer_id,
            balance=account.balance,
            lifetime_points=account.lifetime_points,
            tier=convert.tier_to_pb(account.tier),
            ledger=[convert.ledger_to_pb(e) for e in account.ledger],
            coupons=[convert.coupon_to_pb(c) for c in account.coupons],
        )

    async def RedeemPoints(
        self, request: pb.RedeemPointsRequest, context: grpc.aio.ServicerContext
    ) -> pb.RedeemPointsResponse:
        tenant = require_tenant(request.tenant_id)
        customer = _customer(request.customer_id)
        if request.points <= 0:
            raise InvalidArgument("must be positive", field="points")
        posted = await self._uow.run(
            lambda s: self._loyalty.post(
                s,
                tenant,
                customer,
                -request.points,
                source="redeem",
                source_ref=request.idempotency_key,
                reason=request.reason or "redeemed",
                key=f"{REDEEM_KEY}{request.idempotency_key}" if request.idempotency_key else "",
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
        posted = await self._uow.run(
            lambda s: self._loyalty.post(
                s,
                tenant,
                customer,
                request.points,
                source="manual",
                source_ref=request.idempotency_key,
                reason=request.reason,
                key=f"{MANUAL_KEY}{request.idempotency_key}" if request.idempotency_key else "",
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
        coupon = await self._uow.run(
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
        coupon = await self._uow.run(
            lambda s: self._loyalty.redeem_coupon(s, tenant, request.coupon_id, at)
        )
        return pb.RedeemCouponResponse(coupon=convert.coupon_to_pb(coupon, at))

    # --- value --------------------------------------------------------------------------------

    async def GetCustomerValue(
        self, request: pb.GetCustomerValueRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCustomerValueResponse:
        tenant = require_tenant(request.tenant_id)
        customer = _customer(request.customer_id)
        found = await self._uow.read(lambda s: self._activity.value_of(s, tenant, customer))
        return pb.GetCustomerValueResponse(value=convert.value_to_pb(found))

    async def ListTopCustomers(
        self, request: pb.ListTopCustomersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTopCustomersResponse:
        tenant = require_tenant(request.tenant_id)
        limit = request.limit or 20
        if not 1 <= limit <= MAX_LIST:
            raise InvalidArgument(f"must be within 1..{MAX_LIST}", field="limit")
        # A recompute scores the tenant afresh (writes) before it reads.
        unit = self._uow.run if request.recompute else self._uow.read
        top = await unit(
            lambda s: self._activity.top_customers(s, tenant, limit, recompute=request.recompute)
        )
        return pb.ListTopCustomersResponse(customers=[convert.value_to_pb(v) for v in top])

    # --- segments -----------------------------------------------------------------------------

    async def DefineSegment(
        self, request: pb.DefineSegmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.DefineSegmentResponse:
        tenant = require_tenant(request.tenant_id)
        segment = await self._uow.run(
            lambda s: self._segments.define(s, tenant, request.name, request.expression, now())
        )
        return pb.DefineSegmentResponse(
            segment=pb.Segment(
                segment_id=segment.id,
                name=segment.name,
                expression=segment.expression,
                created_at=convert.ts(segment.created_at),
            )
        )

    async def PreviewSegment(
        self, request: pb.PreviewSegmentRequest, context: grpc.aio.ServicerContext
    ) -> pb.PreviewSegmentResponse:
        tenant = require_tenant(request.tenant_id)
        at = convert.as_of(request)
        sample = request.sample_size if request.sample_size else 10
        count, ids = await self._uow.read(
            lambda s: self._segments.preview_of(
                s, tenant, request.segment_id, request.expression, now=at, sample=sample
            )
        )
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
        scheduled = await self._uow.run(
            lambda s: self._broadcasts.schedule(
                s,
                tenant,
                segment_id=request.segment_id,
                expression=request.expression,
                template=request.template,
                window_start=start,
                window_end=end,
                key=request.idempotency_key,
                now=at,
                wechat_template_id=request.wechat_template_id,
                wechat_template_data=dict(request.wechat_template_data),
            )
        )
        return pb.ScheduleBroadcastResponse(broadcast=convert.broadcast_to_pb(scheduled))

    async def GetBroadcast(
        self, request: pb.GetBroadcastRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetBroadcastResponse:
        tenant = require_tenant(request.tenant_id)
        found, recipients = await self._uow.read(
            lambda s: self._broadcasts.details(
                s, tenant, request.broadcast_id, recipients=request.include_recipients
            )
        )
        return pb.GetBroadcastResponse(
            broadcast=convert.broadcast_to_pb(found),
            recipients=[convert.recipient_to_pb(r) for r in recipients],
        )

    async def TagCustomer(
        self, request: pb.TagCustomerRequest, context: grpc.aio.ServicerContext
    ) -> pb.TagCustomerResponse:
        tenant = require_tenant(request.tenant_id)
        customer = _customer(request.customer_id)
        for tag in request.add:
            if not tag.strip() or len(tag) > 64:
                raise InvalidArgument("tags are 1-64 characters", field="add")
        tags = await self._uow.run(
            lambda s: self._activity.tag(
                s, tenant, customer, add=list(request.add), remove=list(request.remove), at=now()
            )
        )
        return pb.TagCustomerResponse(tags=tags)

    async def GetSuggestions(
        self, request: pb.GetSuggestionsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSuggestionsResponse:
        tenant = require_tenant(request.tenant_id)
        customer = _customer(request.customer_id)
        limit = request.limit or 5
        if not 1 <= limit <= 50:
            raise InvalidArgument("must be within 1..50", field="limit")
        found = await self._uow.read(
            lambda s: self._suggestions.suggest(s, tenant, customer, limit)
        )
        return pb.GetSuggestionsResponse(
            owner_rep_id=found.owner_rep_id,
            suggestions=[
                pb.Suggestion(sku=x.sku, name=x.name, category=x.category, co_buyers=x.co_buyers)
                for x in found.items
            ],
        )

    # --- the funnel ---------------------------------------------------------------------------

    async def GetFunnel(
        self, request: pb.GetFunnelRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetFunnelResponse:
        query = convert.funnel_query(require_tenant(request.tenant_id), request)
        found = await self._uow.read(lambda s: self._funnel.funnel(s, query))
        return convert.funnel_to_pb(found)

    async def GetFunnelCohorts(
        self, request: pb.GetFunnelCohortsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetFunnelCohortsResponse:
        query = convert.funnel_query(require_tenant(request.tenant_id), request)
        found = await self._uow.read(lambda s: self._funnel.cohorts(s, query))
        return convert.cohorts_to_pb(found)

    # --- the customer 360 ---------------------------------------------------------------------

    async def GetCustomer360(
        self, request: pb.GetCustomer360Request, context: grpc.aio.ServicerContext
    ) -> pb.GetCustomer360Response:
        tenant = require_tenant(request.tenant_id)
        customer = _customer(request.customer_id)
        limit = request.timeline_limit or 100
        if not 1 <= limit <= MAX_LIST:
            raise InvalidArgument(f"must be within 1..{MAX_LIST}", field="timeline_limit")
        # identity first, outside the transaction: who the id stands for today
        who = await self._c360.identify(tenant, customer)

        found = await self._uow.read(
            lambda s: self._c360.view(s, tenant, who, limit),
            one_snapshot=True,  # its parts are read one after another and must agree
        )
        return convert_360.customer360_to_pb(found)


def register(servicer: RetentionServicer) -> Callable[[grpc.aio.Server], None]:
    def add(server: grpc.aio.Server) -> None:
        retention_pb2_grpc.add_RetentionServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]

    return add
