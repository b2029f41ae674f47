"""Wires the acquisition service together; the only module that knows every part."""

from __future__ import annotations

import secrets
from pathlib import Path

from closedloop_acquisition import SPEC, metrics
from closedloop_acquisition.callbacks.service import CallbackService
from closedloop_acquisition.catalog.codes import ChannelCodes
from closedloop_acquisition.catalog.service import CatalogService
from closedloop_acquisition.customers.directory import Customers
from closedloop_acquisition.customers.service import CustomerEvents
from closedloop_acquisition.fission.service import FissionService
from closedloop_acquisition.leads.service import LeadService
from closedloop_acquisition.models import Base, LeadRequestRow, kit
from closedloop_acquisition.pages.signin import Signer, SignIn
from closedloop_acquisition.settings import AcquisitionSettings
from closedloop_acquisition.stats.service import StatsService
from closedloop_acquisition.touches.service import TouchService
from closedloop_acquisition.transport import http
from closedloop_acquisition.transport.events import EventHandlers
from closedloop_acquisition.transport.flows import Flows
from closedloop_acquisition.transport.grpc import SERVICE_NAME, AcquisitionServicer, register
from closedloop_acquisition.transport.pages import PageSignIn
from closedloop_acquisition.transport.workers import ContactWayReleaser, InboxWorker
from loopkit.gateway_client import GatewayClient
from loopkit.identity_client import IdentityClient
from loopkit.runtime import ServiceDefinition, ServiceRuntime
from loopkit.uow import UnitOfWork


def build(runtime: ServiceRuntime) -> None:
    settings = runtime.settings
    assert isinstance(settings, AcquisitionSettings)
    metrics.start()
    # Its consumers resolve the identities in share visits and friend-adds: open sealed values.
    runtime.reads_personal_data = True
    # A new customer's data key comes with ResolveCustomer's answer: the relay seals their lead's
    # event without a GetCustomerKeys call.
    directory = IdentityClient.from_settings(settings, keys_known=runtime.remember_pii_keys)
    gateway = (
        GatewayClient.connect(
            settings.gateway_url,
            timeout_s=settings.gateway_timeout_s,
            api_token=settings.api_token,
        )
        if settings.gateway_url
        else None
    )
    customers = Customers(directory)
    catalog = CatalogService()
    leads = LeadService(runtime.outbox, customers, catalog)
    touches = TouchService(runtime.outbox, catalog, customers, leads)
    fission = FissionService(runtime.outbox, catalog)
    callbacks = CallbackService(runtime.outbox, catalog, touches, fission)

    uow = UnitOfWork(runtime.sessions, after_commit=runtime.wake_relay)
    codes = ChannelCodes(gateway)
    flows = Flows(
        uow,
        customers=customers,
        catalog=catalog,
        touches=touches,
        leads=leads,
        stats=StatsService(catalog),
        fission=fission,
        callbacks=callbacks,
        codes=codes,
    )
    sign_in = None
    if gateway is not None:
        secret = settings.session_secret.get_secret_value().encode() or secrets.token_bytes(32)
        sign_in = PageSignIn(
            gateway,
            SignIn(Signer(secret), session_ttl_s=settings.session_ttl_s),
            settings.public_url,
        )
        runtime.on_stop(gateway.close)
    inbox = InboxWorker(uow, callbacks, customers)
    runtime.parts["flows"] = flows  # for tests of what a race between requests leaves
    runtime.add_grpc(register(AcquisitionServicer(flows)), [SERVICE_NAME])
    runtime.add_http(
        http.router(flows, settings.account_registry(), inbox.wake, sign_in),
        lean=http.lean_routes(flows, sign_in),
    )
    for subscription in EventHandlers(touches, CustomerEvents(leads, fission)).subscriptions():
        runtime.add_subscription(subscription)
    runtime.add_worker(inbox.worker(settings.wechat_worker_poll_s))
    if gateway is not None and settings.contact_way_release_interval_s > 0:
        releaser = ContactWayReleaser(uow, catalog, codes)
        runtime.add_worker(releaser.worker(settings.contact_way_release_interval_s))
    # CaptureLead's idempotency keys and their first answers (docs/operations.md).
    lead_requests = Base.metadata.tables[LeadRequestRow.__tablename__]
    runtime.add_expiry(lead_requests, "created_at", settings.idempotency_key_retention_s)
    runtime.on_stop(directory.close)


DEFINITION = ServiceDefinition(
    spec=SPEC,
    metadata=Base.metadata,
    tables=kit,
    migrations_dir=Path(__file__).parent / "migrations",
    build=build,
    settings_cls=AcquisitionSettings,
)
