"""Wires the identity service together; the only module that knows every part."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from closedloop_identity import SPEC
from closedloop_identity.customers.service import CustomerService
from closedloop_identity.keys.service import KeyService
from closedloop_identity.models import Base, kit
from closedloop_identity.transport.grpc import SERVICE_NAME, IdentityServicer, register
from closedloop_identity.transport.keys import LocalKeys
from loopkit.runtime import ServiceDefinition, ServiceRuntime


def build(runtime: ServiceRuntime) -> None:
    customers = CustomerService(runtime.outbox)
    keys = KeyService(lambda: datetime.now(UTC))
    runtime.pii_keys = LocalKeys(runtime.sessions, keys)
    servicer = IdentityServicer(runtime.sessions, customers, runtime.wake_relay, keys)
    runtime.add_grpc(register(servicer), [SERVICE_NAME])


DEFINITION = ServiceDefinition(
    spec=SPEC,
    metadata=Base.metadata,
    tables=kit,
    migrations_dir=Path(__file__).parent / "migrations",
    build=build,
)
