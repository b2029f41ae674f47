"""Checks on what touches and leads carry alike: identities and attribution parameters (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from closedloop.common.v1 import common_pb2
from closedloop_acquisition.catalog.specs import text
from loopkit.customers import KINDS, IdentityValue
from loopkit.errors import InvalidArgument

MAX_IDENTITIES = 10
MAX_PARAMETERS = 20


def check_identities(identities: Sequence[IdentityValue], where: str = "identities") -> None:
    if len(identities) > MAX_IDENTITIES:
        raise InvalidArgument(f"at most {MAX_IDENTITIES} identities", field=where)
    for n, identity in enumerate(identities):
        if identity.kind not in KINDS:
            raise InvalidArgument(f"unknown identity kind {identity.kind!r}", field=f"{where}[{n}]")
        text(identity.value, f"{where}[{n}].value", required=True, max_length=256)
        text(identity.scope, f"{where}[{n}].scope", max_length=256)


def check_parameters(parameters: Mapping[str, str], where: str = "parameters") -> None:
    if len(parameters) > MAX_PARAMETERS:
        raise InvalidArgument(f"at most {MAX_PARAMETERS} parameters", field=where)
    for key, value in parameters.items():
        text(key, where, required=True, max_length=64)
        text(value, f"{where}.{key}", max_length=500)


def identity_pb(identity: IdentityValue) -> common_pb2.Identity:
    return common_pb2.Identity(
        kind=f"IDENTITY_KIND_{identity.kind.upper()}",
        scope=identity.scope,
        value=identity.value,
        verified=identity.verified,
    )


def identity_json(identity: IdentityValue) -> dict[str, str | bool]:
    return {
        "kind": identity.kind,
        "scope": identity.scope,
        "value": identity.value,
        "verified": identity.verified,
    }
