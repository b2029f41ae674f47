"""Wires the referral service together; the only module that knows every part."""

from __future__ import annotations

from pathlib import Path

from closedloop_referral import SPEC, metrics
from closedloop_referral.models import Base, kit
from closedloop_referral.programs.service import ProgramService
from closedloop_referral.referrals.service import FraudRules, ReferralService
from closedloop_referral.settings import ReferralSettings
from closedloop_referral.transport import http
from closedloop_referral.transport.events import EventHandlers
from closedloop_referral.transport.grpc import SERVICE_NAME, ReferralServicer, register
from closedloop_referral.transport.sweep import RewardSweep
from loopkit.identity_client import IdentityClient
from loopkit.runtime import ServiceDefinition, ServiceRuntime


def build(runtime: ServiceRuntime) -> None:
    settings = runtime.settings
    assert isinstance(settings, ReferralSettings)
    metrics.start()
    directory = IdentityClient.from_settings(settings)
    base_url = settings.public_base_url or f"http://{settings.http_host}:{settings.http_port}"
    programs = ProgramService(runtime.outbox, directory, base_url)
    rules = FraudRules(
        burst_window_s=settings.burst_window_s, burst_threshold=settings.burst_threshold
    )
    referrals = ReferralService(runtime.outbox, directory, rules)
    servicer = ReferralServicer(runtime.sessions, programs, referrals, runtime.wake_relay)
    runtime.add_grpc(register(servicer), [SERVICE_NAME])
    runtime.add_http(http.share_router(runtime.sessions, programs, runtime.wake_relay))
    for subscription in EventHandlers(referrals).subscriptions():
        runtime.add_subscription(subscription)
    sweep = RewardSweep(runtime.sessions, referrals, runtime.wake_relay, settings.sweep_interval_s)
    runtime.add_worker(sweep.run)
    runtime.on_stop(directory.close)


DEFINITION = ServiceDefinition(
    spec=SPEC,
    metadata=Base.metadata,
    tables=kit,
    migrations_dir=Path(__file__).parent / "migrations",
    build=build,
    settings_cls=ReferralSettings,
)
