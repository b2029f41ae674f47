"""Checking a form submission against its landing page's schema (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from closedloop_acquisition.catalog.specs import text
from loopkit.customers import IdentityValue
from loopkit.errors import InvalidArgument

MAX_VALUES = 100
_PLAIN_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_TRUE = ("true", "1", "on", "yes")
_FALSE = ("false", "0", "off", "no", "")


@dataclass(frozen=True)
class ValidForm:
    values: dict[str, str]
    # Identities the form carries, and the form field each came from (same order).
    identities: tuple[IdentityValue, ...]
    identity_fields: tuple[str, ...]
    consent_granted: bool
    consent_wording: str


def validate(fields: Sequence[Mapping[str, Any]], values: Mapping[str, str]) -> ValidForm:
    """The submission's values, trimmed; InvalidArgument naming `values.<field>` otherwise."""
    if len(values) > MAX_VALUES:
        raise InvalidArgument(f"at most {MAX_VALUES} values", field="values")
    by_name = {str(f["name"]): f for f in fields}
    for name in values:
        if name not in by_name:
            # Echo the name only when it is a plain one (it travels in a gRPC trailer).
            where = f"values.{name}" if _PLAIN_NAME.match(name) else "values"
            raise InvalidArgument(f"{name[:64]!r} is not a field of this form", field=where)
    clean: dict[str, str] = {}
    identities: list[IdentityValue] = []
    identity_fields: list[str] = []
    consent_granted = False
    wording: list[str] = []
    for name, f in by_name.items():
        where = f"values.{name}"
        raw = values.get(name, "")
        if not isinstance(raw, str):
            raise InvalidArgument("must be a string", field=where)
        value = raw.strip()
        kind = str(f["type"])
        text(value, where, max_length=int(f.get("max_length") or 500))
        if kind == "consent":
            if value.lower() not in _TRUE + _FALSE:
                raise InvalidArgument("must be true or false", field=where)
            agreed = value.lower() in _TRUE
            if f.get("required") and not agreed:
                raise InvalidArgument("consent is required", field=where)
            if agreed:
                consent_granted = True
                wording.append(str(f.get("consent_wording", "")))
            clean[name] = "true" if agreed else "false"
            continue
        if not value:
            if f.get("required"):
                raise InvalidArgument("is required", field=where)
            continue
        if kind == "phone":
            identities.append(IdentityValue(kind="phone", value=value))
            identity_fields.append(name)
        elif kind == "email":
            if "@" not in value:
                raise InvalidArgument("not an e-mail address", field=where)
            identities.append(IdentityValue(kind="email", value=value))
            identity_fields.append(name)
        clean[name] = value
    return ValidForm(
        values=clean,
        identities=tuple(identities),
        identity_fields=tuple(identity_fields),
        consent_granted=consent_granted,
        consent_wording="\n".join(wording),
    )
