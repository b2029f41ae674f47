"""Identity kinds and the normalisation that makes equal identities compare equal."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

import phonenumbers

from loopkit.errors import InvalidArgument

MAX_VALUE_LENGTH = 256
MAX_IDENTITIES_PER_CALL = 32
# WeCom invalidates a pending_id after 90 days; an older one no longer names the same person.
PENDING_ID_TTL = timedelta(days=90)
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Kind(StrEnum):
    WECHAT_OPENID = "wechat_openid"
    WECHAT_UNIONID = "wechat_unionid"
    WECOM_EXTERNAL_USERID = "wecom_external_userid"
    WECOM_PENDING_ID = "wecom_pending_id"
    MINI_PROGRAM_OPENID = "mini_program_openid"
    PHONE = "phone"
    EMAIL = "email"
    EXTERNAL = "external"


# Kinds whose values are only unique within an app or a corp: the scope is part of the identity.
SCOPED_KINDS = frozenset(
    {
        Kind.WECHAT_OPENID,
        Kind.MINI_PROGRAM_OPENID,
        Kind.WECOM_EXTERNAL_USERID,
        Kind.WECOM_PENDING_ID,
    }
)


@dataclass(frozen=True, order=True)
class IdentityKey:
    """One identifier, normalised. Equal keys name the same person within a tenant."""

    kind: Kind
    scope: str
    value: str

    def describe(self) -> str:
        return (
            f"{self.kind}:{self.scope}/{self.value}" if self.scope else f"{self.kind}:{self.value}"
        )


@dataclass(frozen=True)
class ClaimedIdentity:
    """An identity as a caller presents it, with whether the tenant verified it."""

    key: IdentityKey
    verified: bool = False


def normalise_phone(raw: str, *, default_region: str = "CN") -> str:
    """E.164, e.g. "138 0013 8000" -> "+8613800138000"; raises ValueError when not a number."""
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(str(exc)) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalise(kind: Kind, scope: str, value: str, *, field: str) -> IdentityKey:
    """Validate and normalise one identity; errors name `field` (e.g. "identities[2]")."""
    value = value.strip()
    scope = scope.strip()
    if not value:
        raise InvalidArgument("value is required", field=f"{field}.value")
    if len(value) > MAX_VALUE_LENGTH or len(scope) > MAX_VALUE_LENGTH:
        raise InvalidArgument(f"longer than {MAX_VALUE_LENGTH} characters", field=f"{field}.value")
    if kind in SCOPED_KINDS and not scope:
        raise InvalidArgument(f"{kind} needs a scope (appid or corp id)", field=f"{field}.scope")
    if kind not in SCOPED_KINDS:
        scope = ""
    if kind is Kind.PHONE:
        try:
            value = normalise_phone(value)
        except ValueError as exc:
            raise InvalidArgument(
                f"invalid phone number {value!r}: {exc}", field=f"{field}.value"
            ) from None
    elif kind is Kind.EMAIL:
        value = value.lower()
        if not _EMAIL_RE.match(value):
            raise InvalidArgument(f"invalid e-mail address {value!r}", field=f"{field}.value")
    return IdentityKey(kind, scope, value)


def dedupe(claims: list[ClaimedIdentity]) -> list[ClaimedIdentity]:
    """One claim per key, verified if any copy was, in key order (the lock order)."""
    merged: dict[IdentityKey, bool] = {}
    for claim in claims:
        merged[claim.key] = merged.get(claim.key, False) or claim.verified
    return [ClaimedIdentity(key, verified) for key, verified in sorted(merged.items())]
