"""The customer directory as the stage services' domain code sees it: a port, free of transport.

Every stage service resolves the people it meets (an openid at a QR scan, a phone on a form, an
external_userid at a WeCom friend-add) to the one customer id the identity service keeps for them.
Domain code depends on `CustomerDirectory`; `loopkit.identity_client` implements it over gRPC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# Identity kinds by their proto names without the prefix (IDENTITY_KIND_WECHAT_OPENID → ...).
KINDS = (
    "wechat_openid",
    "wechat_unionid",
    "wecom_external_userid",
    "wecom_pending_id",
    "mini_program_openid",
    "phone",
    "email",
    "external",
)


@dataclass(frozen=True)
class IdentityValue:
    """One identifier of a person; `scope` is the appid or corp id for scoped kinds."""

    kind: str
    value: str
    scope: str = ""
    verified: bool = False


@dataclass(frozen=True)
class ResolvedCustomer:
    customer_id: str
    created: bool
    # Customers merged into this one by the call that resolved it.
    merged_ids: tuple[str, ...] = ()
    identities: tuple[IdentityValue, ...] = field(default=())


@dataclass(frozen=True)
class KnownCustomer:
    """A customer as identity keeps them today: `customer_id` is the live id (the survivor when
    `requested_id`, the id asked for, was merged into it)."""

    customer_id: str
    requested_id: str = ""
    merged_ids: tuple[str, ...] = ()
    identities: tuple[IdentityValue, ...] = field(default=())


class CustomerLookup(Protocol):
    async def customer(self, tenant_id: str, customer_id: str) -> KnownCustomer:
        """The live customer an id stands for, with their identities and merged ids.

        Raises NotFound (unknown or forgotten), InvalidArgument (a malformed id) or
        DependencyUnavailable (identity is out: retry later).
        """
        ...


class CustomerDirectory(Protocol):
    async def resolve(
        self,
        tenant_id: str,
        identities: Sequence[IdentityValue],
        *,
        attributes: Mapping[str, Any] | None = None,
        actor: str = "",
    ) -> ResolvedCustomer:
        """The customer these identities belong to: created, attached or merged as needed.

        Raises InvalidArgument (bad value, e.g. an invalid phone, with `field`), FailedPrecondition
        (the merge policy forbids joining the matches) or DependencyUnavailable (retry later).
        """
        ...

    async def current_id(self, tenant_id: str, customer_id: str) -> str:
        """The live id of a customer: itself, or the survivor it was merged into."""
        ...
