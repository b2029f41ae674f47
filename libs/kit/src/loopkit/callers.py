"""Who may call: API keys bound to tenants and a role, kept hashed in a key file.

A key reads `clk_<id>.<secret>`. The key file (`CLOSEDLOOP_API_KEYS_FILE`, JSON; in the cluster a
mounted Secret) holds, per key, its id, the SHA-256 of its secret (the secret is 256 random bits,
so a fast hash is as good as a slow one), a name, its tenants (`*` = every tenant: the services'
own key for calls between them) and its role: `read` may only make calls whose name starts with
Get/List/Search/Check, `write` may make any call a client makes, and `service` (tenants `*` only:
the services' own key) also the internal calls services make of each other, such as identity's
GetCustomerKeys (the per-customer data keys). `closedloop keys add|list|revoke` manages the file;
services notice a changed file within seconds, a new key at once (rotation: add the new key,
switch the caller, revoke the old one).

A service without a key file refuses to start unless CLOSEDLOOP_ALLOW_ANONYMOUS_CALLERS=1 says
on purpose that anyone who reaches it may act for every tenant (`require_callers`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loopkit.errors import InvalidArgument, PermissionDenied, Unauthenticated
from loopkit.tenancy import SERVICE_ROLE as SERVICE_ROLE  # the role is named with the tenancy

ROLES = ("read", "write", "service")
ALL_TENANTS = "*"
READ_PREFIXES = ("Get", "List", "Search", "Check")
KEY_PREFIX = "clk_"
_RELOAD_EVERY_S = 2.0
# Bearer tokens remembered as their Caller, at most (a key file holds a few dozen keys).
_CALLERS_CACHED = 1024


@dataclass(frozen=True)
class Caller:
    key_id: str
    name: str
    tenants: frozenset[str]
    role: str

    def check_tenant(self, tenant: str) -> None:
        if ALL_TENANTS not in self.tenants and tenant not in self.tenants:
            raise PermissionDenied(
                f"this API key may not act for tenant {tenant!r}", field="tenant_id"
            )

    def check_method(self, method: str, *, internal: bool = False) -> None:
        """PermissionDenied unless this caller's role may make the call `method` (its name);
        an `internal` call (between services only) needs the services' role."""
        if internal and self.role != SERVICE_ROLE:
            raise PermissionDenied(
                f"{method} is for the services' own key (role {SERVICE_ROLE}); key"
                f" {self.key_id} has role {self.role}"
            )
        # Any role but write and service (read, or one this version does not know) only reads.
        if self.role not in ("write", SERVICE_ROLE) and not method.startswith(READ_PREFIXES):
            raise PermissionDenied(f"key {self.key_id} is read-only; {method} writes")


class CallersNotConfigured(RuntimeError):
    """A service asked to start with no way to tell who calls it."""


ANONYMOUS_FLAG = "CLOSEDLOOP_ALLOW_ANONYMOUS_CALLERS"


def require_callers(service: str, keys_file: Path | None, allow_anonymous: bool) -> None:
    """Refuse to run a service nobody configured callers for: without a key file every caller
    would act for every tenant, so that takes an explicit CLOSEDLOOP_ALLOW_ANONYMOUS_CALLERS=1."""
    if keys_file is None and not allow_anonymous:
        raise CallersNotConfigured(
            f"{service}: no API key file: set CLOSEDLOOP_API_KEYS_FILE (make one with"
            " `closedloop keys add`; docs/operations.md, Callers and API keys), or set"
            f" {ANONYMOUS_FLAG}=1 to let anyone who reaches this service act for every tenant"
            " (a throwaway local run only)"
        )
    if keys_file is not None and not keys_file.exists():
        raise CallersNotConfigured(
            f"{service}: the API key file {keys_file} (CLOSEDLOOP_API_KEYS_FILE) does not exist;"
            " make it with `closedloop keys add`"
        )


# `make run` keeps its key file and the development key it printed in its state directory, so
# tools on the same machine (make demo, the tests) call as the developer without copying it.
KEYS_FILE_NAME = "api-keys.json"
DEVELOPER_KEY_FILE = "developer-key"


def developer_key(state_dir: Path) -> str | None:
    """The development key the last `make run` with this state directory made, if any."""
    try:
        return (state_dir / DEVELOPER_KEY_FILE).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _parse(bearer: str) -> tuple[str, str]:
    token = bearer.removeprefix("Bearer ").strip()
    key_id, _, secret = token.removeprefix(KEY_PREFIX).partition(".")
    if not token.startswith(KEY_PREFIX) or not key_id or not secret:
        raise Unauthenticated("an API key is required (authorization: Bearer clk_…)")
    return key_id, secret


class KeyStore:
    """The key file, read again when it changes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, dict[str, Any]] = {}
        # What the loaded entries were read from: mtime alone misses a second write within one
        # clock tick; every save (and a Secret's rotation) replaces the file, a new inode.
        self._version: tuple[int, int, int] | None = None
        self._checked = 0.0
        # Bearer token -> its Caller, for tokens that matched the entries loaded now: a call
        # with a known token skips the hash and a new Caller (~3.5 us of every call). Emptied
        # whenever the entries are read again, so a revoked or changed key is refused or seen
        # changed exactly when it was without the cache.
        self._callers: dict[str, Caller] = {}
        self._load()

    def _load(self) -> None:
        try:
            found = self.path.stat()
        except FileNotFoundError:
            self._entries, self._version, self._callers = {}, None, {}
            return
        version = (found.st_mtime_ns, found.st_ino, found.st_size)
        if version == self._version:
            return
        data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        self._entries = {entry["id"]: entry for entry in data.get("keys", [])}
        self._version = version
        self._callers = {}

    def _fresh(self) -> None:
        now = time.monotonic()
        if now - self._checked >= _RELOAD_EVERY_S:
            self._checked = now
            self._load()

    def authenticate(self, bearer: str) -> Caller:
        """The caller this bearer token is, or Unauthenticated (unknown, revoked, wrong)."""
        self._fresh()
        known = self._callers.get(bearer)
        if known is not None:
            return known
        key_id, secret = _parse(bearer)
        entry = self._entries.get(key_id)
        if entry is None:
            # A key added a moment ago works at once: an unknown id looks at the file again (a
            # stat, and a read only when it changed). Revocations take up to _RELOAD_EVERY_S.
            self._load()
            entry = self._entries.get(key_id)
        # Compare against something even for an unknown id, so timing tells nothing.
        expected = entry["hash"] if entry else _digest("")
        if not hmac.compare_digest(expected, _digest(secret)) or entry is None:
            raise Unauthenticated("unknown or revoked API key")
        caller = Caller(
            key_id=key_id,
            name=str(entry.get("name", "")),
            tenants=frozenset(entry["tenants"]),
            role=str(entry["role"]),
        )
        if len(self._callers) >= _CALLERS_CACHED:
            self._callers.clear()
        self._callers[bearer] = caller
        return caller

    def authorize(self, bearer: str, tenant: str, method: str) -> Caller:
        """For HTTP edges that are not WeChat callbacks: the caller, if it may `method` for
        `tenant`; Unauthenticated or PermissionDenied otherwise."""
        caller = self.authenticate(bearer)
        caller.check_tenant(tenant)
        caller.check_method(method)
        return caller

    # --- management (the CLI) ---------------------------------------------------------------

    def entries(self) -> list[dict[str, Any]]:
        self._load()
        return list(self._entries.values())

    def add(self, name: str, tenants: list[str], role: str) -> str:
        """A new key; returns it in full (shown once: only its hash is kept)."""
        if role not in ROLES:
            raise InvalidArgument(f"must be one of {', '.join(ROLES)}", field="role")
        if not tenants:
            raise InvalidArgument("at least one tenant (or *)", field="tenants")
        if role == SERVICE_ROLE and set(tenants) != {ALL_TENANTS}:
            raise InvalidArgument(
                "the services' role acts for every tenant: use only *", field="tenants"
            )
        self._load()
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        self._entries[key_id] = {
            "id": key_id,
            "name": name,
            "tenants": sorted(set(tenants)),
            "role": role,
            "hash": _digest(secret),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self._save()
        return f"{KEY_PREFIX}{key_id}.{secret}"

    def revoke(self, key_id: str) -> bool:
        self._load()
        if self._entries.pop(key_id, None) is None:
            return False
        self._save()
        return True

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        # Only hashes inside, but still nobody else's business.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"keys": list(self._entries.values())}, f, indent=2)
        tmp.replace(self.path)
        self._version = None
        self._load()
