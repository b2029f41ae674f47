"""Personal data in events, sealed under a per-customer key that erasure destroys.

Streams keep their history, dead letters are copies and replays re-read it, so deleting personal
data from them is not possible message by message. Instead every value that names a person (an
`Identity.value`: phone, openid, unionid, external_userid, e-mail; a follower's message text) is
sealed with AES-256-GCM under its customer's data key before it leaves the service (the outbox
relay seals; see `OutboxRelay`). Identity keeps the keys (`GetCustomerKeys`) and destroys them in
`ForgetCustomer`: from then on every copy of that customer's data in every stream, replay and
dead letter is unreadable, without rewriting a stream (crypto-shredding).

A consumer that needs the values opens the envelope (`Opener.open`); a sealed value whose key is
destroyed is dropped from the event (an erased identity is removed, an erased text emptied), so a
replay after erasure cannot bring the person back. A value that is not sealed (events written
before sealing existed, or by a test) passes through unchanged.

The sealed form is a string, so no event schema changes: `pii1.` + base64url(nonce ‖ ciphertext),
with the tenant and customer id as associated data (a value cannot be moved to another customer).
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

# Importing the event modules registers their message types in the default descriptor pool.
from closedloop.events.v1 import (  # noqa: F401
    acquisition_events_pb2,
    conversion_events_pb2,
    gateway_events_pb2,
    identity_events_pb2,
    referral_events_pb2,
    retention_events_pb2,
)
from closedloop.events.v1.envelope_pb2 import Envelope
from loopkit.errors import InvalidArgument

PREFIX = "pii1."
KEY_BYTES = 32
_NONCE_BYTES = 12
_IDENTITY = "closedloop.common.v1.Identity"

# The fields that name a person, by message type. An `Identity` anywhere in an event is covered
# through its `value`; add a field here when an event starts carrying another personal value.
PERSONAL_FIELDS: Mapping[str, frozenset[str]] = {
    _IDENTITY: frozenset({"value"}),
    "closedloop.events.v1.InteractionRecorded": frozenset({"summary"}),
}


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def _aad(tenant_id: str, customer_id: str) -> bytes:
    return f"{tenant_id}/{customer_id}".encode()


def seal(key: bytes, tenant_id: str, customer_id: str, value: str) -> str:
    return _sealed(AESGCM(key), _aad(tenant_id, customer_id), value)


def _sealed(aead: AESGCM, aad: bytes, value: str) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    sealed = aead.encrypt(nonce, value.encode(), aad)
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


class Unreadable(InvalidArgument):
    """A sealed value that does not open with the key given (tampered, or another customer's):
    a poison message, dead-lettered rather than retried."""


def unseal(key: bytes, tenant_id: str, customer_id: str, value: str) -> str:
    body = value[len(PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        plain = AESGCM(key).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _aad(tenant_id, customer_id)
        )
    except (InvalidTag, ValueError) as exc:
        raise Unreadable(
            f"sealed value does not open for customer {customer_id}", field="payload"
        ) from exc
    return plain.decode()


# --- where personal values sit in a message -------------------------------------------------

_carries: dict[str, bool] = {}


def carries_personal_data(descriptor: Descriptor) -> bool:
    """Whether messages of this type can hold a personal field (memoised per type)."""
    name = descriptor.full_name
    if name not in _carries:
        _carries[name] = False  # a recursive type does not recurse forever
        _carries[name] = name in PERSONAL_FIELDS or any(
            f.message_type is not None and carries_personal_data(f.message_type)
            for f in descriptor.fields
        )
    return _carries[name]


def _rewrite(msg: Message, change: Callable[[str], str | None]) -> bool:
    """Applies `change` to every non-empty personal value in `msg`; a `None` answer erases it
    (an erased Identity is removed from its list or cleared). Returns whether anything changed."""
    changed = False
    own = PERSONAL_FIELDS.get(msg.DESCRIPTOR.full_name, frozenset())
    for field, value in msg.ListFields():
        if field.name in own and field.type == FieldDescriptor.TYPE_STRING and value:
            new = change(value)
            if new != value:
                setattr(msg, field.name, new or "")
                changed = True
        elif field.message_type is not None and carries_personal_data(field.message_type):
            if field.is_repeated:
                items = list(value)
                keep = []
                for item in items:
                    changed |= _rewrite(item, change)
                    if not _erased_identity(item):
                        keep.append(item)
                if len(keep) != len(items):
                    msg.ClearField(field.name)
                    getattr(msg, field.name).extend(keep)
            else:
                changed |= _rewrite(value, change)
                if _erased_identity(value):
                    msg.ClearField(field.name)
    return changed


def _erased_identity(msg: Message) -> bool:
    return msg.DESCRIPTOR.full_name == _IDENTITY and not getattr(msg, "value", "")


def _payload_of(env: Envelope) -> Message | None:
    """The envelope's payload as its own type, if that type can carry personal data."""
    name = env.payload.TypeName()
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(name)
    except KeyError:
        return None
    if not carries_personal_data(descriptor):
        return None
    msg = message_factory.GetMessageClass(descriptor)()
    if not env.payload.Unpack(msg):
        return None
    return msg


# --- keys --------------------------------------------------------------------------------


class KeySource(Protocol):
    """Where data keys come from: identity's table in identity, its GetCustomerKeys elsewhere.
    Answers every id asked: the key, or None when the customer was forgotten."""

    async def keys(self, tenant_id: str, customer_ids: Sequence[str]) -> dict[str, bytes | None]:
        """The key of each customer id (created when missing), None for an erased one."""
        ...


class CachedKeys:
    """Keys kept in memory for `ttl_s`, so a burst of one customer's events costs one lookup.
    The TTL bounds how long a process can still open a customer's data after the erasure."""

    def __init__(self, source: KeySource, *, ttl_s: float = 60.0, max_entries: int = 50_000):
        self._source = source
        self._ttl_s = ttl_s
        self._max = max_entries
        self._cache: dict[tuple[str, str], tuple[float, bytes | None]] = {}

    def remember(self, tenant_id: str, keys: Mapping[str, bytes | None]) -> None:
        """Keys this process knows first hand, kept for `ttl_s` like fetched ones: identity's own
        relay then seals a new customer's first events without reading the key back, and a
        forget (None) stops this process sealing or opening with a key it holds at once."""
        expires = time.monotonic() + self._ttl_s
        if len(self._cache) + len(keys) > self._max:
            self._cache.clear()
        for cid, key in keys.items():
            self._cache[(tenant_id, cid)] = (expires, key)

    async def keys(self, tenant_id: str, customer_ids: Iterable[str]) -> dict[str, bytes | None]:
        now = time.monotonic()
        found: dict[str, bytes | None] = {}
        missing = []
        for cid in dict.fromkeys(customer_ids):
            hit = self._cache.get((tenant_id, cid))
            if hit is not None and hit[0] > now:
                found[cid] = hit[1]
            else:
                missing.append(cid)
        if missing:
            fetched = await self._source.keys(tenant_id, missing)
            if len(self._cache) + len(fetched) > self._max:
                self._cache.clear()
            for cid in missing:
                key = fetched.get(cid)
                found[cid] = key
                self._cache[(tenant_id, cid)] = (now + self._ttl_s, key)
        return found


# --- sealing and opening envelopes ---------------------------------------------------------


@dataclass(frozen=True)
class Sealed:
    data: bytes
    # Whether the event carried personal data: the relay deletes such outbox rows once they are
    # published instead of keeping them for the outbox retention.
    personal: bool


class Sealer:
    """Seals the personal values of serialized envelopes (the outbox relay's step)."""

    def __init__(self, keys: CachedKeys) -> None:
        self._keys = keys

    async def seal_all(self, datas: Sequence[bytes]) -> list[Sealed]:
        parsed: list[tuple[Envelope, Message, list[_Slot]] | None] = []
        wanted: dict[str, set[str]] = {}
        for data in datas:
            env = Envelope()
            env.ParseFromString(data)
            msg = _payload_of(env)
            # An event about nobody yet (a share visit before the visitor is resolved) has no
            # key to seal under: it stays readable until the stream's max age (operations.md).
            slots = _plain_slots(msg) if msg is not None and env.customer_id else []
            if msg is None or not slots:
                parsed.append(None)
                continue
            parsed.append((env, msg, slots))
            wanted.setdefault(env.tenant_id, set()).add(env.customer_id)
        keys = {t: await self._keys.keys(t, sorted(ids)) for t, ids in wanted.items()}
        out = []
        for data, item in zip(datas, parsed, strict=True):
            if item is None:
                out.append(Sealed(data, False))
                continue
            env, msg, slots = item
            key = keys[env.tenant_id].get(env.customer_id)
            if key is None:
                _seal_values(msg, None, env)  # a forgotten customer's values do not leave at all
            else:
                # The values the first walk found, sealed where they sit: no second walk.
                aead, aad = AESGCM(key), _aad(env.tenant_id, env.customer_id)
                for holder, name in slots:
                    setattr(holder, name, _sealed(aead, aad, getattr(holder, name)))
            env.payload.Pack(msg)
            out.append(Sealed(env.SerializeToString(), True))
        return out


# A personal value in a message: the (sub)message that holds it and the field's name.
_Slot = tuple[Message, str]


def _plain_slots(msg: Message) -> list[_Slot]:
    """Where `msg` holds personal values that are not sealed yet, found in one walk."""
    found: list[_Slot] = []
    own = PERSONAL_FIELDS.get(msg.DESCRIPTOR.full_name, frozenset())
    for field, value in msg.ListFields():
        if field.name in own and field.type == FieldDescriptor.TYPE_STRING:
            if value and not is_sealed(value):
                found.append((msg, field.name))
        elif field.message_type is not None and carries_personal_data(field.message_type):
            for item in value if field.is_repeated else (value,):
                found.extend(_plain_slots(item))
    return found


def _seal_values(msg: Message, key: bytes | None, env: Envelope) -> None:
    def change(value: str) -> str | None:
        if is_sealed(value):
            return value
        # A forgotten customer's value does not leave at all.
        return None if key is None else seal(key, env.tenant_id, env.customer_id, value)

    _rewrite(msg, change)


def _is_plain(value: str) -> bool:
    return not is_sealed(value)


def _any_value(msg: Message, test: Callable[[str], bool]) -> bool:
    """Whether some personal value of `msg` passes `test` (the message is left as it is)."""
    found = False

    def probe(value: str) -> str:
        nonlocal found
        found = found or test(value)
        return value

    _rewrite(msg, probe)
    return found


class Opener:
    """Opens the sealed values of an incoming envelope in place (a consumer's first step)."""

    def __init__(self, keys: CachedKeys) -> None:
        self._keys = keys

    async def open(self, env: Envelope) -> None:
        msg = _payload_of(env)
        if msg is None:
            return
        if not _any_value(msg, is_sealed):
            return
        key = None
        if env.customer_id:
            key = (await self._keys.keys(env.tenant_id, [env.customer_id]))[env.customer_id]
        tenant, customer = env.tenant_id, env.customer_id

        def change(value: str) -> str | None:
            if not is_sealed(value):
                return value
            if key is None:
                return None  # erased: the customer was forgotten
            return unseal(key, tenant, customer, value)

        _rewrite(msg, change)
        env.payload.Pack(msg)
