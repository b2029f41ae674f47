"""A tiny gRPC service of the kit's tests, served by the kit's GrpcServer: each method shows one
behaviour of the interceptor (domain errors, crashes, outages, deadlines, tenancy, draining,
traces)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from google.protobuf.wrappers_pb2 import StringValue
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import trace

from loopkit import errors
from loopkit.grpc_server import GrpcServer
from loopkit.tenancy import require_tenant

SERVICE = "loopkit.test.Probe"
TOKEN = "s3cret-token"
DEADLINE_S = 0.5
ERRORS: dict[str, errors.DomainError] = {
    "invalid": errors.InvalidArgument("must be a phone number", field="phone"),
    "not_found": errors.NotFound("no such customer", field="customer_id"),
    "exists": errors.AlreadyExists("already linked", field="identity"),
    "precondition": errors.FailedPrecondition("customer was forgotten", field="customer_id"),
    "denied": errors.PermissionDenied("not your tenant", field="tenant_id"),
    "conflict": errors.Conflict("concurrent merge"),
}


async def _fail(request: StringValue, context: grpc.aio.ServicerContext) -> StringValue:
    raise ERRORS[request.value]


async def _crash(request: StringValue, context: grpc.aio.ServicerContext) -> StringValue:
    raise RuntimeError(f"secret internals: {request.value}")


async def _unreachable_db(request: StringValue, context: grpc.aio.ServicerContext) -> StringValue:
    raise ConnectionRefusedError(111, "Connect call failed ('10.0.0.9', 5432)")


async def _abort(request: StringValue, context: grpc.aio.ServicerContext) -> StringValue:
    await context.abort(grpc.StatusCode.OUT_OF_RANGE, "aborted by the servicer")
    raise AssertionError("abort returned")


async def _sleep(request: StringValue, context: grpc.aio.ServicerContext) -> StringValue:
    await asyncio.sleep(float(request.value))
    return StringValue(value="done")


# Released by the draining test: a call that stays in flight until the test lets it finish.
RELEASE_HELD = asyncio.Event()


async def _hold(request: StringValue, context: grpc.aio.ServicerContext) -> StringValue:
    await RELEASE_HELD.wait()
    return StringValue(value="finished")


async def _tenant(request: StringValue, context: grpc.aio.ServicerContext) -> StringValue:
    return StringValue(value=require_tenant(request.value))


async def _trace(request: StringValue, context: grpc.aio.ServicerContext) -> StringValue:
    """The span the servicer runs in: trace id, span id, sampled."""
    ctx = trace.get_current_span().get_span_context()
    return StringValue(value=f"{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags.sampled}")


METHODS: dict[str, Callable[[StringValue, grpc.aio.ServicerContext], Awaitable[StringValue]]] = {
    "Fail": _fail,
    "Crash": _crash,
    "UnreachableDb": _unreachable_db,
    "Abort": _abort,
    "Sleep": _sleep,
    "Tenant": _tenant,
    "GetTenant": _tenant,  # the same, but a read by its name
    "Hold": _hold,
    "Trace": _trace,
}


def register(server: grpc.aio.Server) -> None:
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            fn,
            request_deserializer=StringValue.FromString,
            response_serializer=StringValue.SerializeToString,
        )
        for name, fn in METHODS.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


@dataclass
class Probe:
    server: GrpcServer
    channel: grpc.aio.Channel

    async def call(
        self, method: str, value: str = "", metadata: tuple[tuple[str, str], ...] = ()
    ) -> StringValue:
        rpc = self.channel.unary_unary(
            f"/{SERVICE}/{method}",
            request_serializer=StringValue.SerializeToString,
            response_deserializer=StringValue.FromString,
        )
        result: StringValue = await rpc(StringValue(value=value), metadata=metadata, timeout=10)
        return result

    async def health(self, service: str = "") -> int:
        stub = health_pb2_grpc.HealthStub(self.channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return int(reply.status)
