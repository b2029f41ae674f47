"""The gRPC bootstrap as a client sees it: status codes for domain errors, no leaked internals,
deadlines, the bearer token, tenancy and health."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from google.protobuf.wrappers_pb2 import StringValue
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_probe import DEADLINE_S, ERRORS, RELEASE_HELD, SERVICE, TOKEN, Probe, register
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from loopkit.grpc_server import GrpcServer
from loopkit_dev.testing import eventually


async def _started(api_token: str | None) -> tuple[GrpcServer, grpc.aio.Channel]:
    server = GrpcServer("127.0.0.1", 0, default_deadline_s=DEADLINE_S, api_token=api_token)
    server.add(register, [SERVICE])
    await server.start()
    return server, grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")


@pytest_asyncio.fixture(loop_scope="session")
async def probe(span_exporter: InMemorySpanExporter) -> AsyncIterator[Probe]:
    server, channel = await _started(api_token=None)
    await server.set_serving(True)
    yield Probe(server, channel)
    await channel.close()
    await server.stop(0)


@pytest_asyncio.fixture(loop_scope="session")
async def guarded() -> AsyncIterator[Probe]:
    """A server that wants a bearer token."""
    server, channel = await _started(api_token=TOKEN)
    await server.set_serving(True)
    yield Probe(server, channel)
    await channel.close()
    await server.stop(0)


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("invalid", grpc.StatusCode.INVALID_ARGUMENT),
        ("not_found", grpc.StatusCode.NOT_FOUND),
        ("exists", grpc.StatusCode.ALREADY_EXISTS),
        ("precondition", grpc.StatusCode.FAILED_PRECONDITION),
        ("denied", grpc.StatusCode.PERMISSION_DENIED),
        ("conflict", grpc.StatusCode.ABORTED),
    ],
)
async def test_domain_errors_map_to_status_codes_with_reason_and_field(
    probe: Probe, kind: str, code: grpc.StatusCode
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await probe.call("Fail", kind)
    err = caught.value
    expected = ERRORS[kind]
    assert err.code() == code
    assert expected.reason in (err.details() or "")
    trailing = dict(err.trailing_metadata() or ())
    assert trailing.get("closedloop-field") == expected.field


async def test_unexpected_exception_is_internal_without_internals(probe: Probe) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await probe.call("Crash", "password=hunter2")
    err = caught.value
    details = err.details() or ""
    assert err.code() == grpc.StatusCode.INTERNAL
    # A trace id ops can look up; nothing of the exception itself.
    assert re.fullmatch(r"internal error \(trace [0-9a-f]{32}\)", details), details
    assert "hunter2" not in details
    assert "secret" not in details
    assert "Traceback" not in details
    assert "closedloop-field" not in dict(err.trailing_metadata() or ())


async def test_calls_continue_the_callers_trace_and_sampled_ones_are_exported(
    probe: Probe, span_exporter: InMemorySpanExporter
) -> None:
    """A call runs in a span of the caller's trace, sampled as the caller's was; spans that are
    sampled are exported with their attributes, a bug's exception and a domain error's code."""
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    span_exporter.clear()
    seen = {}
    for flags, sampled in (("01", "True"), ("00", "False")):
        metadata = (("traceparent", f"00-{trace_id}-{parent}-{flags}"),)
        got_trace, span_id, got_sampled = (await probe.call("Trace", "", metadata)).value.split("-")
        assert (got_trace, got_sampled) == (trace_id, sampled)
        assert span_id != parent
        seen[sampled] = span_id
    for method, value in (("Crash", "x"), ("Fail", "invalid")):
        with pytest.raises(grpc.aio.AioRpcError):
            await probe.call(method, value)

    finished = [s for s in span_exporter.get_finished_spans() if s.name.startswith(f"/{SERVICE}/")]
    traced = [s for s in finished if s.name == f"/{SERVICE}/Trace"]
    assert len(traced) == 1  # the sampled-out call is not recorded
    span = traced[0]
    assert span.kind == SpanKind.SERVER
    assert f"{span.context.span_id:016x}" == seen["True"]
    assert span.parent is not None and f"{span.parent.span_id:016x}" == parent
    assert dict(span.attributes or {}) == {"rpc.system": "grpc", "rpc.method": span.name}
    (crash,) = [s for s in finished if s.name == f"/{SERVICE}/Crash"]
    assert crash.status.status_code == StatusCode.ERROR
    assert "RuntimeError" in [
        e.attributes.get("exception.type") for e in crash.events if e.attributes
    ]
    (failed,) = [s for s in finished if s.name == f"/{SERVICE}/Fail"]
    assert (failed.attributes or {}).get("rpc.grpc.status_code") == 3


async def test_lost_database_is_unavailable_not_internal(probe: Probe) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await probe.call("UnreachableDb")
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "10.0.0.9" not in (caught.value.details() or "")


async def test_servicer_abort_keeps_its_own_status(probe: Probe) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await probe.call("Abort")
    assert caught.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert caught.value.details() == "aborted by the servicer"


async def test_call_without_client_deadline_gets_the_default_one(probe: Probe) -> None:
    rpc = probe.channel.unary_unary(
        f"/{SERVICE}/Sleep",
        request_serializer=StringValue.SerializeToString,
        response_deserializer=StringValue.FromString,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        # No timeout from the client: the server's default deadline applies.
        await rpc(StringValue(value=str(DEADLINE_S * 10)))
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "/Sleep" in (caught.value.details() or "")


async def test_bearer_token_is_required_but_health_stays_open(guarded: Probe) -> None:
    for metadata in [(), (("authorization", "Bearer wrong"),), (("authorization", TOKEN),)]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await guarded.call("Tenant", "t1", metadata)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert TOKEN not in (caught.value.details() or "")
    ok = await guarded.call("Tenant", "t1", (("authorization", f"Bearer {TOKEN}"),))
    assert ok.value == "t1"
    assert await guarded.health() == health_pb2.HealthCheckResponse.SERVING
    assert await guarded.health(SERVICE) == health_pb2.HealthCheckResponse.SERVING


async def test_tenant_from_metadata_reaches_the_domain(probe: Probe) -> None:
    bound = (("x-tenant-id", "t-acme"),)
    assert (await probe.call("Tenant", "", bound)).value == "t-acme"
    assert (await probe.call("Tenant", "t-acme", bound)).value == "t-acme"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await probe.call("Tenant", "t-other", bound)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert dict(caught.value.trailing_metadata() or ()).get("closedloop-field") == "tenant_id"
    # The binding belongs to its call only: the next call without metadata has no tenant.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await probe.call("Tenant", "")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (await probe.call("Tenant", "t-other")).value == "t-other"


async def test_call_durations_fall_in_buckets_of_milliseconds(probe: Probe) -> None:
    """The duration histogram's buckets are in seconds at the scale of a call (1 ms to 10 s), so
    a dashboard's p50/p99 of fast calls is a figure, not the first bucket's 5 s bound."""
    from prometheus_client import REGISTRY, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    for _ in range(3):
        await probe.call("Tenant", "t-acme")
    bounds: dict[float, float] = {}
    for family in text_string_to_metric_families(generate_latest(REGISTRY).decode()):
        for sample in family.samples:
            if (
                sample.name == "closedloop_grpc_server_duration_seconds_bucket"
                and sample.labels.get("rpc_method", "").endswith("/Tenant")
            ):
                bounds[float(sample.labels["le"])] = (
                    bounds.get(float(sample.labels["le"]), 0) + sample.value
                )
    assert bounds, "no duration histogram for the probe's calls"
    assert min(b for b in bounds if b > 0) <= 0.005
    # A test call on a busy machine takes well under a second: counted below 1 s.
    assert max(n for b, n in bounds.items() if b <= 1.0) >= 3


async def test_health_is_not_serving_until_ready_and_again_while_draining() -> None:
    server, channel = await _started(api_token=None)
    probe = Probe(server, channel)
    try:
        for name in ("", SERVICE):
            assert await probe.health(name) == health_pb2.HealthCheckResponse.NOT_SERVING
        await server.set_serving(True)
        for name in ("", SERVICE):
            assert await probe.health(name) == health_pb2.HealthCheckResponse.SERVING

        # A load balancer watching health hears NOT_SERVING as soon as the drain begins.
        stub = health_pb2_grpc.HealthStub(channel)
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=SERVICE))
        first = await watch.read()
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        in_flight = asyncio.create_task(probe.call("Sleep", "0.4"))
        await asyncio.sleep(0.1)
        stopping = asyncio.create_task(server.stop(grace_s=2.0))
        update = await asyncio.wait_for(watch.read(), 5)
        assert update.status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()  # or the endless watch holds the drain for its whole grace period
        # The call in flight when the drain began still finishes, within the grace period.
        assert (await in_flight).value == "done"
        await stopping
    finally:
        await channel.close()
        await server.stop(0)


async def test_calls_arriving_while_the_server_drains_are_unavailable_not_cancelled() -> None:
    server, channel = await _started(api_token=None)
    await server.set_serving(True)
    probe = Probe(server, channel)
    await probe.call("Tenant", "t1")  # connected
    held = asyncio.ensure_future(probe.call("Hold"))

    async def outcome() -> str:
        try:
            await probe.call("Tenant", "t1")
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
        return "OK"

    async def in_flight() -> bool:
        return server.in_flight == 1  # the held call has started

    await eventually(in_flight)
    # SIGTERM arrives amid a burst of calls: the burst and the drain start together.
    burst = [asyncio.ensure_future(outcome()) for _ in range(50)]
    stopping = asyncio.ensure_future(server.stop(30))
    codes = await asyncio.gather(*burst)
    late = await outcome()  # arrives well after SIGTERM, while the held call still runs
    RELEASE_HELD.set()
    assert (await held).value == "finished"  # in flight at SIGTERM: allowed to finish
    await stopping
    await channel.close()
    assert "CANCELLED" not in codes, codes
    assert set(codes) <= {"OK", "UNAVAILABLE"}, codes
    assert late == "UNAVAILABLE"


def test_a_server_built_but_never_started_leaves_nothing_for_the_interpreter_exit() -> None:
    """A runtime built for its parts only (the funnel rebuild, an OpenAPI document) never serves:
    it creates no grpc.aio server, so none is finalised at exit, after the modules its finaliser
    logs through are torn down (that printed "Error in sys.excepthook" at the end of the run)."""
    script = (
        "import asyncio, sys\n"
        "from loopkit.grpc_server import GrpcServer\n"
        "async def build() -> GrpcServer:\n"
        "    return GrpcServer('127.0.0.1', 0)\n"
        "sys.kept = asyncio.run(build())  # alive until the interpreter exits\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Error in sys.excepthook" not in done.stderr
