"""What ops and other services see: health, readiness, metrics, reflection, the client factory."""

import uuid

import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from closedloop.identity.v1 import identity_pb2 as pb
from closedloop.identity.v1 import identity_pb2_grpc
from closedloop_identity.transport.grpc import IDEMPOTENT_METHODS, SERVICE_NAME
from identity_helpers import openid
from loopkit.grpc_client import make_channel
from loopkit_dev.testing import eventually, read_events


async def test_health_readiness_and_metrics(identity):
    async with httpx.AsyncClient(base_url=identity.http_url) as http:
        assert (await http.get("/healthz")).json()["status"] == "ok"
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        stub = identity_pb2_grpc.IdentityServiceStub(identity.channel)
        await stub.ResolveCustomer(
            pb.ResolveCustomerRequest(tenant_id="t-ops", identities=[openid("o-ops")])
        )
        metrics = (await http.get("/metrics")).text
    assert "closedloop_grpc_server_duration_seconds_count{" in metrics
    assert "/closedloop.identity.v1.IdentityService/ResolveCustomer" in metrics


async def test_grpc_health_reports_the_service(identity):
    health = health_pb2_grpc.HealthStub(identity.channel)
    for service in ("", SERVICE_NAME):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_client_factory_binds_the_tenant(identity):
    channel = make_channel(
        identity.grpc_target,
        api_token=identity.api_key,
        idempotent=IDEMPOTENT_METHODS,
        tenant_id="t-bound",
        default_timeout_s=2.0,
    )
    try:
        stub = identity_pb2_grpc.IdentityServiceStub(channel)
        reply = await stub.ResolveCustomer(pb.ResolveCustomerRequest(identities=[openid("o-c")]))
        assert reply.customer.tenant_id == "t-bound"
    finally:
        await channel.close()


async def test_trace_context_flows_from_grpc_call_into_the_event(identity, nats_client):
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    stub = identity_pb2_grpc.IdentityServiceStub(identity.channel)
    tenant = f"t-trace-{uuid.uuid4().hex[:8]}"
    await stub.ResolveCustomer(
        pb.ResolveCustomerRequest(tenant_id=tenant, identities=[openid("o-trace")]),
        metadata=(("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01"),),
    )

    async def created():
        return await read_events(nats_client, "IDENTITY", tenant_id=tenant)

    await eventually(created)
    [event] = await created()
    assert event.traceparent.split("-")[1] == trace_id
