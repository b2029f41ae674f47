"""Wires the retention service together; the only module that knows every part."""

from __future__ import annotations

import functools
from pathlib import Path

from closedloop_retention import SPEC, metrics
from closedloop_retention.activity.rules import RulesRepository
from closedloop_retention.activity.service import ActivityService
from closedloop_retention.broadcasts.service import BroadcastService
from closedloop_retention.loyalty.service import LoyaltyService
from closedloop_retention.loyalty.winback import win_back
from closedloop_retention.models import Base, kit
from closedloop_retention.segments.service import SegmentService
from closedloop_retention.settings import RetentionSettings
from closedloop_retention.transport.events import EventHandlers
from closedloop_retention.transport.grpc import SERVICE_NAME, RetentionServicer, register
from closedloop_retention.transport.workers import Workers, run_every
from loopkit.gateway_client import GatewayClient
from loopkit.runtime import ServiceDefinition, ServiceRuntime
from loopkit.wechat.sender import MessageSender, SandboxSender


def build(runtime: ServiceRuntime) -> None:
    settings = runtime.settings
    assert isinstance(settings, RetentionSettings)
    metrics.initialise()
    rules = RulesRepository()
    loyalty = LoyaltyService(runtime.outbox)
    activity = ActivityService(runtime.outbox, rules, win_back(loyalty))
    segments = SegmentService()
    broadcasts = BroadcastService(runtime.outbox, rules, segments)
    servicer = RetentionServicer(
        runtime.sessions,
        runtime.wake_relay,
        rules=rules,
        activity=activity,
        loyalty=loyalty,
        segments=segments,
        broadcasts=broadcasts,
    )
    runtime.add_grpc(register(servicer), [SERVICE_NAME])
    for subscription in EventHandlers(activity, loyalty, rules).subscriptions():
        runtime.add_subscription(subscription)

    sender: MessageSender
    if settings.gateway_url:
        # The gateway stores each message under its key and answers at once: the dispatcher
        # does not wait for WeChat.
        gateway = GatewayClient.connect(
            settings.gateway_url, timeout_s=settings.gateway_timeout_s, api_token=settings.api_token
        )
        runtime.on_stop(gateway.close)
        sender = gateway
    else:
        log_path = Path(settings.state_dir) / settings.sandbox_log if settings.sandbox_log else None
        sender = SandboxSender(log_path)
    workers = Workers(
        runtime.sessions,
        runtime.wake_relay,
        rules=rules,
        activity=activity,
        broadcasts=broadcasts,
        sender=sender,
        dispatch_batch=settings.dispatch_batch,
    )
    runtime.parts.update(sender=sender, workers=workers)  # for tests and operators

    jobs = [
        (settings.dispatch_interval_s, workers.dispatch, "broadcast dispatch"),
        (settings.sweep_interval_s, workers.sweep_all, "lifecycle sweep"),
    ]
    for interval, tick, name in jobs:
        if interval > 0:
            runtime.add_worker(functools.partial(run_every, interval, tick, name=name))


DEFINITION = ServiceDefinition(
    spec=SPEC,
    metadata=Base.metadata,
    tables=kit,
    migrations_dir=Path(__file__).parent / "migrations",
    build=build,
    settings_cls=RetentionSettings,
)
