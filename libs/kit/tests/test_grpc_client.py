"""What a kit channel (`make_channel`) adds to every unary call, seen by a real gRPC server: the
channel's credentials and tenant, the caller's own metadata, the trace context and the default
deadline (a call's own deadline wins); and when channels get connections of their own."""

from __future__ import annotations

import grpc
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from closedloop.identity.v1 import identity_pb2, identity_pb2_grpc
from loopkit.grpc_client import keyed_channel, make_channel
from loopkit.grpc_server import GrpcServer


class Recording(identity_pb2_grpc.IdentityServiceServicer):  # type: ignore[misc]
    """Answers ResolveCustomer and keeps what each call arrived with, and from where."""

    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, str], float | None]] = []
        self.peers: set[str] = set()

    async def ResolveCustomer(
        self, request: identity_pb2.ResolveCustomerRequest, context: grpc.aio.ServicerContext
    ) -> identity_pb2.ResolveCustomerResponse:
        metadata = {str(k): str(v) for k, v in context.invocation_metadata() or ()}
        self.seen.append((metadata, context.time_remaining()))
        self.peers.add(context.peer())
        return identity_pb2.ResolveCustomerResponse(created=True)


def _recording_server(recording: Recording) -> GrpcServer:
    server = GrpcServer("127.0.0.1", 0)
    server.add(
        lambda s: identity_pb2_grpc.add_IdentityServiceServicer_to_server(recording, s),  # type: ignore[no-untyped-call]
        ["closedloop.identity.v1.IdentityService"],
    )
    return server


async def test_a_kit_channel_sends_its_metadata_trace_context_and_deadline(
    span_exporter: InMemorySpanExporter,
) -> None:
    recording = Recording()
    server = _recording_server(recording)
    await server.start()
    channel = make_channel(
        f"127.0.0.1:{server.port}", default_timeout_s=7.0, api_token="tok", tenant_id="t-bound"
    )
    try:
        stub = identity_pb2_grpc.IdentityServiceStub(channel)  # type: ignore[no-untyped-call]
        request = identity_pb2.ResolveCustomerRequest(tenant_id="t-1")
        with trace.get_tracer("test").start_as_current_span("caller") as span:
            answer = await stub.ResolveCustomer(request, metadata=[("x-mine", "1")])
        assert answer.created
        await stub.ResolveCustomer(request, timeout=1.5)
    finally:
        await channel.close()
        await server.stop(0)
    (first, first_left), (second, second_left) = recording.seen
    assert first["authorization"] == "Bearer tok"
    assert first["x-tenant-id"] == "t-bound"
    assert first["x-mine"] == "1"
    trace_id = format(span.get_span_context().trace_id, "032x")
    assert first["traceparent"].split("-")[1] == trace_id
    assert first_left is not None and 5.0 < first_left < 7.5  # the channel's default (rounded up)
    assert second_left is not None and second_left < 2.0  # the call's own (rounded up)
    assert "x-mine" not in second and second["authorization"] == "Bearer tok"


async def test_keyed_channels_of_their_own_connection_reach_the_server_over_as_many() -> None:
    """What spreads a caller's calls over a service's SO_REUSEPORT workers (the kernel gives each
    connection to one): channels to one target otherwise share one connection (gRPC's global
    subchannel pool), however many a process opens."""
    for own, connections in ((True, 4), (False, 1)):
        recording = Recording()
        server = _recording_server(recording)
        await server.start()
        target = f"127.0.0.1:{server.port}"
        channels = [keyed_channel(target, "tok", own_connection=own) for _ in range(4)]
        try:
            for channel in channels:
                stub = identity_pb2_grpc.IdentityServiceStub(channel)  # type: ignore[no-untyped-call]
                await stub.ResolveCustomer(identity_pb2.ResolveCustomerRequest(tenant_id="t-1"))
        finally:
            for channel in channels:
                await channel.close()
            await server.stop(0)
        assert len(recording.peers) == connections, (own, recording.peers)
