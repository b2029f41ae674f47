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


class _ClientInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, default_timeout_s: float, metadata: Sequence[tuple[str, str]]) -> None:
        self._timeout = default_timeout_s
        self._metadata = list(metadata)

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        metadata = list(details.metadata or []) + self._metadata
        metadata += list(current_context_headers().items())
        new_details = grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=details.timeout if details.timeout is not None else self._timeout,
            metadata=metadata,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )
        return await continuation(new_details, request)


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
    return grpc.aio.insecure_channel(
        target, options=options, interceptors=[_ClientInterceptor(default_timeout_s, metadata)]
    )


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


def keyed_channel(target: str, api_key: str | None) -> grpc.aio.Channel:
    """A plain insecure channel whose every call presents `api_key` unless the call brings its
    own `authorization` (none: calls go without)."""
    interceptors = [_BearerInterceptor(api_key)] if api_key else []
    return grpc.aio.insecure_channel(target, interceptors=interceptors)
