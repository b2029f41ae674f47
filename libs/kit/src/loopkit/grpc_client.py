"""gRPC client channels: deadlines on every call, retries for idempotent methods, trace context."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from typing import Any

import grpc

from loopkit import errors
from loopkit.tracing import current_context_headers

# Retried on codes that mean "the server never did the work or may safely do it again".
_RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "2s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE", "ABORTED"],
}


# A callee's answer the caller can act on comes back as the same domain error; anything else
# (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, ...) means the dependency is not there right now.
DOMAIN_ERRORS: dict[grpc.StatusCode, type[errors.DomainError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
    grpc.StatusCode.ABORTED: errors.Conflict,
}


def translate_error(
    exc: grpc.aio.AioRpcError, dependency: str, *, outages: Collection[grpc.StatusCode] = ()
) -> Exception:
    """The domain error a failed call stands for (`field` from the `closedloop-field` trailer),
    or DependencyUnavailable naming `dependency`. `outages`: codes that mean the dependency is
    not usable rather than a refusal to pass on (UNAUTHENTICATED from a callee means our own
    credentials are wrong: the end user did nothing wrong, so it must not reach them as such)."""
    code = exc.code()
    domain = None if code in outages else DOMAIN_ERRORS.get(code)
    if domain is not None:
        trailers = dict(exc.trailing_metadata() or ())
        field = trailers.get("closedloop-field") or None
        reason = exc.details() or code.name
        if field and reason.startswith(f"{field}: "):
            reason = reason[len(field) + 2 :]
        return domain(reason, field=str(field) if field else None)
    return errors.DependencyUnavailable(f"{dependency}: {code.name} ({exc.details()})")


def service_config(idempotent: Sequence[tuple[str, str]]) -> str:
    """A gRPC service config retrying the (service, method) pairs that are safe to repeat."""
    names = [{"service": s, "method": m} for s, m in idempotent]
    return json.dumps({"methodConfig": [{"name": names, "retryPolicy": _RETRY_POLICY}]})


class _UnaryUnary:
    """A unary-unary method of a kit channel: the channel's metadata, the current trace context
    and its default deadline added to each call. Done here rather than in a grpc.aio interceptor:
    an intercepted call runs the interceptor chain as a task of its own before the call's task
    (~60 us of CPU per call, on every lead a form captures)."""

    __slots__ = ("_call", "_metadata", "_timeout")

    def __init__(self, call: Any, default_timeout_s: float, metadata: Sequence[tuple[str, str]]):
        self._call = call
        self._timeout = default_timeout_s
        self._metadata = list(metadata)

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str]] | None = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Any:
        sent = [*metadata, *self._metadata] if metadata else list(self._metadata)
        sent += current_context_headers().items()
        return self._call(
            request,
            timeout=self._timeout if timeout is None else timeout,
            metadata=sent,
            credentials=credentials,
            wait_for_ready=wait_for_ready,
            compression=compression,
        )


class KitChannel(grpc.aio.Channel):  # type: ignore[misc]
    """A grpc.aio channel whose unary-unary calls carry the kit's metadata, trace context and
    default deadline (the only kind of call the kit's clients make; streams pass through)."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        default_timeout_s: float,
        metadata: Sequence[tuple[str, str]],
    ) -> None:
        self._channel = channel
        self._timeout = default_timeout_s
        self._metadata = list(metadata)

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        call = self._channel.unary_unary(method, *args, **kwargs)
        return _UnaryUnary(call, self._timeout, self._metadata)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._channel.unary_stream(method, *args, **kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._channel.stream_unary(method, *args, **kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._channel.stream_stream(method, *args, **kwargs)

    async def close(self, grace: float | None = None) -> None:
        await self._channel.close(grace)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self._channel.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self._channel.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self._channel.channel_ready()

    async def __aenter__(self) -> KitChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._channel.close(None)


def make_channel(
    target: str,
    *,
    idempotent: Sequence[tuple[str, str]] = (),
    default_timeout_s: float = 5.0,
    api_token: str | None = None,
    tenant_id: str | None = None,
) -> grpc.aio.Channel:
    """An insecure channel (mTLS is the mesh's job in the cluster) with the kit's policies."""
    metadata: list[tuple[str, str]] = []
    if api_token:
        metadata.append(("authorization", f"Bearer {api_token}"))
    if tenant_id:
        metadata.append(("x-tenant-id", tenant_id))
    options = [
        ("grpc.enable_retries", 1),
        ("grpc.service_config", service_config(idempotent)),
        ("grpc.keepalive_time_ms", 30_000),
    ]
    channel = grpc.aio.insecure_channel(target, options=options)
    return KitChannel(channel, default_timeout_s, metadata)


class _BearerInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, api_key: str) -> None:
        self._metadata = [("authorization", f"Bearer {api_key}")]

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        metadata = list(details.metadata or [])
        # A call that names its own key (a test trying another caller) keeps it.
        if not any(k == "authorization" for k, _ in metadata):
            metadata += self._metadata
        new_details = grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=details.timeout,
            metadata=metadata,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )
        return await continuation(new_details, request)


def keyed_channel(
    target: str, api_key: str | None, *, own_connection: bool = False
) -> grpc.aio.Channel:
    """A plain insecure channel whose every call presents `api_key` unless the call brings its
    own `authorization` (none: calls go without). `own_connection`: its own TCP connection;
    otherwise gRPC shares one between every channel of the process to the same target with the
    same options (its global subchannel pool), however many channels are opened."""
    interceptors = [_BearerInterceptor(api_key)] if api_key else []
    options = [("grpc.use_local_subchannel_pool", 1)] if own_connection else []
    return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
