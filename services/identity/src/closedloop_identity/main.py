"""Wires the identity service together; the only module that knows every part."""

from __future__ import annotations

from pathlib import Path

from closedloop_identity import SPEC
from closedloop_identity.clock import Clock, system_clock
from closedloop_identity.customers.service import CustomerService
from closedloop_identity.erasure.service import ErasureService
from closedloop_identity.keys.service import KeyService, KeysKnown
from closedloop_identity.merges.service import MergeService
from closedloop_identity.models import Base, kit
from closedloop_identity.policies.service import PolicyService
from closedloop_identity.resolve.service import ResolveService
from closedloop_identity.transport.grpc import SERVICE_NAME, IdentityServicer, UseCases, register
from closedloop_identity.transport.keys import LocalKeys
from loopkit.events import Outbox
from loopkit.runtime import ServiceDefinition, ServiceRuntime
from loopkit.uow import UnitOfWork


def use_cases(
    outbox: Outbox, clock: Clock = system_clock, keys_known: KeysKnown | None = None
) -> UseCases:
    """The domain on one outbox and one clock (tests pass their own clock); `keys_known` hears
    of the data keys it creates and destroys (the runtime's key cache)."""
    customers = CustomerService(outbox, clock)
    merges = MergeService(outbox, customers, clock)
    policies = PolicyService(clock)
    return UseCases(
        customers=customers,
        resolve=ResolveService(outbox, customers, merges, policies, clock, keys_known=keys_known),
        merges=merges,
        erasure=ErasureService(outbox, customers, clock, keys_known),
        policies=policies,
        keys=KeyService(clock),
    )


def build(runtime: ServiceRuntime) -> None:
    uow = UnitOfWork(runtime.sessions, after_commit=runtime.wake_relay)
    domain = use_cases(runtime.outbox, keys_known=runtime.remember_pii_keys)
    # Identity's own relay seals events with keys read from its table (loopkit.pii).
    runtime.pii_keys = LocalKeys(uow, domain.keys)
    servicer = IdentityServicer(uow, domain)
    # The data keys that open customers' sealed values: for the services' own key only.
    runtime.add_grpc(
        register(servicer), [SERVICE_NAME], internal=[f"/{SERVICE_NAME}/GetCustomerKeys"]
    )


DEFINITION = ServiceDefinition(
    spec=SPEC,
    metadata=Base.metadata,
    tables=kit,
    migrations_dir=Path(__file__).parent / "migrations",
    build=build,
)
