"""Wires the acquisition service together; the only module that knows every part."""

from __future__ import annotations

import secrets
from pathlib import Path

from closedloop_acquisition import SPEC, metrics
from closedloop_acquisition.callbacks.service import CallbackService
from closedloop_acquisition.capture.service import CaptureService
from closedloop_acquisition.catalog.codes import ChannelCodes
from closedloop_acquisition.catalog.service import CatalogService
from closedloop_acquisition.fission.service import FissionService
from closedloop_acquisition.models import Base, kit
from closedloop_acquisition.pages.signin import Signer, SignIn
from closedloop_acquisition.settings import AcquisitionSettings
from closedloop_acquisition.transport import events, http, pages
from closedloop_acquisition.transport.flows import Flows
from closedloop_acquisition.transport.gateway import GatewayClient
from closedloop_acquisition.transport.grpc import SERVICE_NAME, AcquisitionServicer, register
from closedloop_acquisition.transport.pages import PageSignIn
from closedloop_acquisition.transport.worker import InboxWorker
from loopkit.identity_client import IdentityClient
from loopkit.runtime import ServiceDefinition, ServiceRuntime


def build(runtime: ServiceRuntime) -> None:
    settings = runtime.settings
    assert isinstance(settings, AcquisitionSettings)
    metrics.start()
    # Its consumers resolve the identities in share visits and friend-adds: open sealed values.
    runtime.reads_personal_data = True
    directory = IdentityClient.from_settings(settings)
    gateway = GatewayClient.from_settings(settings) if settings.gateway_url else None
    catalog = CatalogService()
    capture = CaptureService(runtime.outbox, directory, catalog)
    fission = FissionService(runtime.outbox, catalog)
    callbacks = CallbackService(runtime.outbox, catalog, capture, fission)
    codes = ChannelCodes(gateway)
    flows = Flows(runtime.sessions, catalog, capture, fission, runtime.wake_relay, codes=codes)
    sign_in = None
    if gateway is not None:
        secret = settings.session_secret.get_secret_value().encode() or secrets.token_bytes(32)
        sign_in = PageSignIn(
            gateway,
            SignIn(Signer(secret), session_ttl_s=settings.session_ttl_s),
            settings.public_url,
        )
        runtime.on_stop(gateway.close)
    worker = InboxWorker(
        runtime.sessions,
        callbacks,
        capture,
        runtime.wake_relay,
        poll_interval_s=settings.wechat_worker_poll_s,
    )
    runtime.add_grpc(register(AcquisitionServicer(flows)), [SERVICE_NAME])
    runtime.add_http(http.forms_router(flows, sign_in.signin if sign_in else None))
    runtime.add_http(pages.pages_router(flows, sign_in))
    runtime.add_http(http.wechat_router(flows, callbacks, settings.wechat_apps, worker.wake))
    runtime.add_subscription(events.identity_events(capture, fission))
    runtime.add_subscription(events.referral_events(catalog, capture))
    runtime.add_subscription(events.conversion_events(catalog, capture))
    runtime.add_worker(worker.run)
    runtime.on_stop(directory.close)


DEFINITION = ServiceDefinition(
    spec=SPEC,
    metadata=Base.metadata,
    tables=kit,
    migrations_dir=Path(__file__).parent / "migrations",
    build=build,
    settings_cls=AcquisitionSettings,
)
