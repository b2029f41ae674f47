"""Wires the referral service together; the only module that knows every part."""

from __future__ import annotations

from pathlib import Path

from closedloop_referral import SPEC, metrics
from closedloop_referral.customers.service import CustomerEvents
from closedloop_referral.models import Base, kit
from closedloop_referral.programs.repository import ProgramRepository
from closedloop_referral.programs.service import ProgramService
from closedloop_referral.referrals.fraud import FraudCheck, FraudRules
from closedloop_referral.referrals.repository import ReferralRepository
from closedloop_referral.referrals.service import ReferralService
from closedloop_referral.rewards.repository import RewardRepository
from closedloop_referral.rewards.service import RewardService
from closedloop_referral.settings import ReferralSettings
from closedloop_referral.stats.service import StatsService
from closedloop_referral.transport import http
from closedloop_referral.transport.events import EventHandlers
from closedloop_referral.transport.grpc import SERVICE_NAME, ReferralServicer, register
from closedloop_referral.transport.workers import reward_sweep
from loopkit.identity_client import IdentityClient
from loopkit.runtime import ServiceDefinition, ServiceRuntime
from loopkit.uow import UnitOfWork


def build(runtime: ServiceRuntime) -> None:
    settings = runtime.settings
    assert isinstance(settings, ReferralSettings)
    metrics.start()
    # Its consumers match a newcomer's openids to share visits: open sealed values.
    runtime.reads_personal_data = True
    directory = IdentityClient.from_settings(settings)
    base_url = settings.public_base_url or f"http://{settings.http_host}:{settings.http_port}"
    program_rows, referral_rows, reward_rows = (
        ProgramRepository(),
        ReferralRepository(),
        RewardRepository(),
    )
    programs = ProgramService(runtime.outbox, directory, base_url, program_rows)
    rules = FraudRules(
        burst_window_s=settings.burst_window_s, burst_threshold=settings.burst_threshold
    )
    rewards = RewardService(runtime.outbox, reward_rows, referral_rows)
    referrals = ReferralService(
        runtime.outbox,
        directory,
        fraud=FraudCheck(rules, program_rows, referral_rows),
        rewards=rewards,
        referrals=referral_rows,
        programs=program_rows,
    )
    stats = StatsService(programs, program_rows, referral_rows, reward_rows)
    customers = CustomerEvents(referrals, program_rows, referral_rows, reward_rows)

    uow = UnitOfWork(runtime.sessions, after_commit=runtime.wake_relay)
    servicer = ReferralServicer(
        uow, programs=programs, referrals=referrals, rewards=rewards, stats=stats
    )
    runtime.add_grpc(register(servicer), [SERVICE_NAME])
    runtime.add_http(http.share_router(uow, programs))
    runtime.parts["programs"] = programs  # tests hold a visit's transaction open (races)
    for subscription in EventHandlers(referrals, customers).subscriptions():
        runtime.add_subscription(subscription)
    runtime.add_worker(reward_sweep(uow, rewards, settings.sweep_interval_s))
    runtime.on_stop(directory.close)


DEFINITION = ServiceDefinition(
    spec=SPEC,
    metadata=Base.metadata,
    tables=kit,
    migrations_dir=Path(__file__).parent / "migrations",
    build=build,
    settings_cls=ReferralSettings,
)
