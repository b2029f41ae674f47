"""Tenant of the current call: every request names one, and nothing crosses tenants."""

from __future__ import annotations

import re
from contextvars import ContextVar

from loopkit.errors import InvalidArgument, PermissionDenied

TENANT_METADATA_KEY = "x-tenant-id"
_TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Set by the gRPC interceptor from call metadata, when the caller sent it.
metadata_tenant: ContextVar[str | None] = ContextVar("metadata_tenant", default=None)
# Set by the gRPC interceptor when callers authenticate with API keys: the tenants the caller's
# key is bound to ("*" = all). None: no per-tenant keys configured.
caller_tenants: ContextVar[frozenset[str] | None] = ContextVar("caller_tenants", default=None)
# Set with caller_tenants: the role of the caller's key (loopkit.callers.ROLES).
caller_role: ContextVar[str | None] = ContextVar("caller_role", default=None)
SERVICE_ROLE = "service"


def internal_caller() -> bool:
    """Whether the current caller may make the services' internal calls (identity's
    GetCustomerKeys): its key has the services' role, or no per-tenant keys are configured (then
    the interceptor lets every call through, internal ones too)."""
    return caller_tenants.get() is None or caller_role.get() == SERVICE_ROLE


def require_tenant(requested: str, *, field: str = "tenant_id") -> str:
    """The tenant of the request: the message's field, else the call metadata.

    Both given and different is refused, so a client bound to one tenant cannot ask for another.
    """
    from_metadata = metadata_tenant.get()
    tenant = requested or from_metadata or ""
    if not tenant:
        raise InvalidArgument("a tenant is required", field=field)
    if not _TENANT_RE.match(tenant):
        raise InvalidArgument(
            "must be 1-64 characters of letters, digits, '_', '.', '-'", field=field
        )
    if requested and from_metadata and requested != from_metadata:
        raise PermissionDenied(f"call is bound to tenant {from_metadata!r}", field=field)
    allowed = caller_tenants.get()  # see loopkit.callers (which imports this module)
    if allowed is not None and "*" not in allowed and tenant not in allowed:
        raise PermissionDenied(f"this API key may not act for tenant {tenant!r}", field=field)
    return tenant
