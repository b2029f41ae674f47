"""gRPC server bootstrap: health, reflection, and one interceptor for auth, tenancy, deadlines,
tracing, metrics and domain-error mapping."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from opentelemetry import metrics
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from loopkit import errors
from loopkit.callers import KeyStore
from loopkit.outages import is_outage, outage_name
from loopkit.telemetry import SECONDS_BUCKETS
from loopkit.tenancy import (
    TENANT_METADATA_KEY,
    caller_role,
    caller_tenants,
    metadata_tenant,
    require_tenant,
)
from loopkit.tracing import span_from_headers, trace_id_hex

log = logging.getLogger(__name__)
_meter = metrics.get_meter("loopkit.grpc")
_duration = _meter.create_histogram(
    "closedloop_grpc_server_duration",
    unit="s",
    description="gRPC server call duration",
    explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
)

STATUS_OF: dict[type[errors.DomainError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.Conflict: grpc.StatusCode.ABORTED,
}
# Infrastructure services stay open: probes and grpcurl need no token or tenant.
_OPEN_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def status_of(exc: errors.DomainError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return grpc.StatusCode.FAILED_PRECONDITION


class ServiceInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(
        self,
        *,
        default_deadline_s: float,
        api_token: str | None,
        keys: KeyStore | None = None,
    ) -> None:
        self._default_deadline_s = default_deadline_s
        self._api_token = api_token
        self._keys = keys
        # Full names (/package.Service/Method) of calls only the services' own key may make.
        self.internal_methods: set[str] = set()
        # Set when the server drains: calls that arrive then are told UNAVAILABLE (retry
        # elsewhere or later) instead of being cancelled by the transport when it stops.
        self.draining = False
        self.in_flight = 0  # calls being handled now
        self._idle = asyncio.Event()
        self._idle.set()

    async def wait_idle(self, timeout_s: float) -> None:
        """Until no call is being handled (or `timeout_s` passed)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout_s)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        return self.wrap_handler(details.method, await continuation(details))

    def wrap_handler(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """`handler` with its unary-unary behaviour run through `_wrap` (open services and
        other kinds of call unchanged)."""
        if handler is None or handler.unary_unary is None or method.startswith(_OPEN_PREFIXES):
            return handler
        return grpc.unary_unary_rpc_method_handler(
            self._wrap(method, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _wrap(
        self, method: str, behavior: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
    ) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
        """One coroutine per call: drain check, auth, tenancy, deadline, span, metrics, and
        errors mapped to status codes. What is the same on every call of `method` (the span's
        attributes, the method's short name, the metric's labels of a call that succeeds) is
        built here, once."""
        span_attributes = {"rpc.system": "grpc", "rpc.method": method}
        name = method.rsplit("/", 1)[-1]
        ok_labels = {"rpc_method": method, "rpc_grpc_status_code": grpc.StatusCode.OK.name}

        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if self.draining:
                await context.abort(
                    grpc.StatusCode.UNAVAILABLE, "the server is shutting down; retry shortly"
                )
            metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            self.in_flight += 1
            self._idle.clear()
            token = metadata_tenant.set(metadata.get(TENANT_METADATA_KEY))
            allowed = caller_tenants.set(None)
            role = caller_role.set(None)
            try:
                with span_from_headers(
                    method, metadata, kind=SpanKind.SERVER, attributes=span_attributes
                ) as span:
                    try:
                        self._authenticate(method, name, metadata, request)
                        remaining = context.time_remaining()
                        budget = self._default_deadline_s if remaining is None else remaining
                        # asyncio.timeout, unlike wait_for, adds no task per call.
                        async with asyncio.timeout(budget):
                            return await behavior(request, context)
                    except asyncio.CancelledError:
                        code = grpc.StatusCode.CANCELLED
                        raise
                    except Exception as exc:
                        code = _code_for(exc, context)
                        await _fail(method, exc, code, context, span)
                        raise  # _fail raises; for the type checker
            finally:
                caller_tenants.reset(allowed)
                caller_role.reset(role)
                metadata_tenant.reset(token)
                _duration.record(
                    time.perf_counter() - started,
                    ok_labels
                    if code is grpc.StatusCode.OK
                    else {"rpc_method": method, "rpc_grpc_status_code": code.name},
                )
                self.in_flight -= 1
                if self.in_flight == 0:
                    self._idle.set()

        return call

    def _authenticate(self, method: str, name: str, metadata: dict[str, str], request: Any) -> None:
        if self._keys is not None:
            caller = self._keys.authenticate(metadata.get("authorization", ""))
            caller.check_method(name, internal=method in self.internal_methods)
            # Checked here for the tenant the request and the metadata name, and again by
            # require_tenant (which every call makes) for the tenant the call settles on.
            caller_tenants.set(caller.tenants)
            caller_role.set(caller.role)
            named = getattr(request, "tenant_id", "")
            if isinstance(named, str) and named:
                require_tenant(named)
            bound = metadata.get(TENANT_METADATA_KEY)
            if bound and bound != named:  # the same tenant twice is checked once
                require_tenant(bound)
            return
        if self._api_token is None:
            return
        given = metadata.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self._api_token}".encode()):
            raise errors.PermissionDenied("missing or wrong bearer token")


def _code_for(exc: Exception, context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    """The status a call that raised `exc` ends with."""
    if isinstance(exc, errors.DomainError):
        return status_of(exc)
    if isinstance(exc, TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    aborted: grpc.StatusCode | None = context.code()
    if aborted is not None:  # the servicer aborted on purpose
        return aborted
    if isinstance(exc, errors.DependencyUnavailable) or is_outage(exc):
        return grpc.StatusCode.UNAVAILABLE
    return grpc.StatusCode.INTERNAL


async def _fail(
    method: str,
    exc: Exception,
    code: grpc.StatusCode,
    context: grpc.aio.ServicerContext,
    span: Span,
) -> None:
    """End the call with `code` (from `_code_for`) as the client should see it: a domain error's
    reason and field, no internals but a trace id; raises, as context.abort does."""
    if isinstance(exc, errors.DomainError):
        if exc.field:
            context.set_trailing_metadata((("closedloop-field", exc.field),))
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        await context.abort(code, str(exc))
    if isinstance(exc, TimeoutError):
        await context.abort(code, f"{method} did not finish within its deadline")
    if context.code() is not None:
        raise exc
    if isinstance(exc, errors.DependencyUnavailable):
        log.warning("%s: %s", method, exc)
        await context.abort(code, f"{exc}; retry shortly")
    if is_outage(exc):
        # Retryable by the client's policy; not a bug worth a stack trace.
        log.warning("%s: dependency unavailable: %s", method, exc)
        await context.abort(code, f"{outage_name(exc)} is unavailable; retry shortly")
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR))
    log.exception("%s failed", method, exc_info=exc)
    await context.abort(code, f"internal error (trace {trace_id_hex(span)})")


class _WrappedHandlers(grpc.GenericRpcHandler):  # type: ignore[misc]
    """A generic handler whose method handlers come wrapped by the interceptor, each wrapped
    once (the handlers services register are fixed per method)."""

    def __init__(self, inner: grpc.GenericRpcHandler, interceptor: ServiceInterceptor) -> None:
        self._inner = inner
        self._interceptor = interceptor
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method: str = details.method
        found = self._wrapped.get(method)
        if found is None:
            handler = self._inner.service(details)
            if handler is None:
                return None
            found = self._wrapped[method] = self._interceptor.wrap_handler(method, handler)
        return found


class _Registrar:
    """The server as a service's `register` sees it: what it adds is wrapped by the interceptor
    at registration, not per call. A grpc.aio server interceptor costs a coroutine, a handler
    lookup and a new handler on every call (~0.1 ms of CPU per call, as much as the echo itself);
    the wrapped handlers do the same per-call work (auth, tenancy, deadline, span, metrics,
    errors) without it."""

    def __init__(self, server: grpc.aio.Server, interceptor: ServiceInterceptor) -> None:
        self._server = server
        self._interceptor = interceptor

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(
            tuple(_WrappedHandlers(h, self._interceptor) for h in handlers)
        )

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        wrap = self._interceptor.wrap_handler
        self._server.add_registered_method_handlers(
            service, {name: wrap(f"/{service}/{name}", h) for name, h in handlers.items()}
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


class GrpcServer:
    """A grpc.aio server with health (NOT_SERVING until started, and again while draining)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        default_deadline_s: float = 10.0,
        api_token: str | None = None,
        keys: KeyStore | None = None,
        reuse_port: bool = False,
        health_aliases: Sequence[str] = (),
    ) -> None:
        """`reuse_port` lets several worker processes listen on one port (off otherwise, so a
        second server on a taken port fails loudly); `health_aliases` are extra health names this
        server reports, such as the worker it is (`closedloop.worker.1`)."""
        self._interceptor = ServiceInterceptor(
            default_deadline_s=default_deadline_s, api_token=api_token, keys=keys
        )
        self._options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ]
        # Created by `start`, not here: a runtime built for its parts only (the funnel rebuild,
        # an OpenAPI document) never serves, and a grpc.aio server that was never stopped is
        # finalised at interpreter exit, after the modules its finaliser logs through are gone
        # ("Error in sys.excepthook").
        self.server: grpc.aio.Server | None = None
        self._registrations: list[Callable[[grpc.aio.Server], None]] = []
        self.health = HealthServicer()
        self.address = f"{host}:{port}"
        self.port = 0
        self._service_names: list[str] = []
        self._health_aliases = list(health_aliases)

    def add(
        self,
        register: Callable[[grpc.aio.Server], None],
        service_names: Sequence[str],
        *,
        internal: Sequence[str] = (),
    ) -> None:
        """`internal`: full method names (/package.Service/Method) that only the services' own
        key may call (with per-tenant keys; PERMISSION_DENIED for any other key)."""
        self._registrations.append(register)
        self._service_names.extend(service_names)
        self._interceptor.internal_methods.update(internal)

    async def start(self) -> None:
        server = self.server = grpc.aio.server(options=self._options)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        for register in self._registrations:
            register(cast(grpc.aio.Server, _Registrar(server, self._interceptor)))
        names = [
            *self._service_names,
            reflection.SERVICE_NAME,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        ]
        reflection.enable_server_reflection(names, server)
        self.port = server.add_insecure_port(self.address)
        if self.port == 0:
            raise OSError(f"cannot listen for gRPC on {self.address}")
        for name in ["", *self._service_names, *self._health_aliases]:
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await server.start()

    @property
    def in_flight(self) -> int:
        """Calls being handled right now."""
        return self._interceptor.in_flight

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self._service_names, *self._health_aliases]:
            await self.health.set(name, status)

    async def stop(self, grace_s: float) -> None:
        """Stop taking calls, let in-flight ones finish within `grace_s`.

        New calls are answered UNAVAILABLE by the interceptor while in-flight ones finish; only
        then does the transport stop. Stopping it at once would cancel calls that had arrived
        but not started (clients see CANCELLED, which they do not retry).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        await self.set_serving(False)
        self._interceptor.draining = True
        await self._interceptor.wait_idle(grace_s)
        if self.server is not None:
            await self.server.stop(max(0.0, deadline - loop.time()))
