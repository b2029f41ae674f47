"""What ops and callers see: health, metrics from the start, clear errors for bad requests."""

from __future__ import annotations

import grpc
import httpx

from closedloop.retention.v1 import retention_pb2 as pb
from closedloop_retention.transport.grpc import IDEMPOTENT_METHODS
from loopkit.grpc_client import make_channel
from loopkit_dev.testing import RunningService
from retention_helpers import Stub, customer, rpc_error, tenant


async def test_health_readiness_and_business_metrics(retention: RunningService) -> None:
    async with httpx.AsyncClient(base_url=retention.http_url) as http:
        assert (await http.get("/healthz")).json()["status"] == "ok"
        assert (await http.get("/readyz")).status_code == 200
        metrics = (await http.get("/metrics")).text
    for name in (
        "closedloop_stage_changes",
        "closedloop_points_earned",
        "closedloop_broadcast_messages_sent",
    ):
        assert name in metrics, name


async def test_bad_requests_name_the_field(stub: Stub) -> None:
    t = tenant()
    cases = [
        (
            stub.GetCustomerActivity(pb.GetCustomerActivityRequest(customer_id=customer())),
            grpc.StatusCode.INVALID_ARGUMENT,
            "tenant_id",
        ),
        (
            stub.GetLifecycle(pb.GetLifecycleRequest(tenant_id=t, customer_id=customer())),
            grpc.StatusCode.NOT_FOUND,
            "customer_id",
        ),
        (
            stub.SetLifecycleRules(
                pb.SetLifecycleRulesRequest(
                    tenant_id=t, rules=pb.LifecycleRules(quiet_start="25:00")
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "rules.quiet_start",
        ),
        (
            stub.SetLifecycleRules(pb.SetLifecycleRulesRequest(tenant_id=t, fields=["colour"])),
            grpc.StatusCode.INVALID_ARGUMENT,
            "fields",
        ),
        (
            stub.RedeemPoints(
                pb.RedeemPointsRequest(tenant_id=t, customer_id=customer(), points=5)
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "idempotency_key",
        ),
        (
            stub.AdjustPoints(
                pb.AdjustPointsRequest(
                    tenant_id=t, customer_id=customer(), points=-5, idempotency_key="k", reason="x"
                )
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "points",
        ),
        (
            stub.IssueCoupon(pb.IssueCouponRequest(tenant_id=t, customer_id=customer())),
            grpc.StatusCode.INVALID_ARGUMENT,
            "template_id",
        ),
        (
            stub.ListTopCustomers(pb.ListTopCustomersRequest(tenant_id=t, limit=10_000)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "limit",
        ),
    ]
    for call, code, field in cases:
        err = await rpc_error(call)
        assert err.code() == code, (field, err.details())
        trailers = dict(err.trailing_metadata() or ())
        assert trailers.get("closedloop-field") == field, (field, trailers)


async def test_client_factory_binds_the_tenant(retention: RunningService) -> None:
    channel = make_channel(
        retention.grpc_target,
        api_token=retention.api_key,
        idempotent=IDEMPOTENT_METHODS,
        tenant_id="t-bound",
        default_timeout_s=2.0,
    )
    try:
        from closedloop.retention.v1 import retention_pb2_grpc

        stub = retention_pb2_grpc.RetentionServiceStub(channel)
        res = await stub.TagCustomer(
            pb.TagCustomerRequest(customer_id=customer(), add=["vip", "tea"], remove=["tea"])
        )
        assert list(res.tags) == ["vip"]
    finally:
        await channel.close()
