"""Wires the retention service together; the only module that knows every part."""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import timedelta
from pathlib import Path

from sqlalchemy import not_, or_

from closedloop_retention import SPEC, metrics
from closedloop_retention.activity.intake import ActivityIntake
from closedloop_retention.activity.people import People
from closedloop_retention.activity.repository import ActivityRepository
from closedloop_retention.activity.rules import RulesRepository
from closedloop_retention.activity.service import ActivityService
from closedloop_retention.broadcasts.repository import BroadcastRepository
from closedloop_retention.broadcasts.service import BroadcastService
from closedloop_retention.consent.service import ConsentService
from closedloop_retention.customer360.repository import Customer360Repository
from closedloop_retention.customer360.service import Customer360Service
from closedloop_retention.fission.service import FissionService
from closedloop_retention.funnel.repository import FunnelRepository
from closedloop_retention.funnel.service import FunnelService
from closedloop_retention.loyalty.clawback import RewardClawback
from closedloop_retention.loyalty.repository import LoyaltyRepository
from closedloop_retention.loyalty.service import CLIENT_KEY_PREFIXES, REWARD_KEY, LoyaltyService
from closedloop_retention.loyalty.winback import win_back
from closedloop_retention.models import (
    Base,
    BroadcastRow,
    CouponRow,
    LedgerRow,
    NoticeRow,
    WinBackOfferRow,
    kit,
)
from closedloop_retention.notices.service import FINISHED, NoticeService
from closedloop_retention.segments.service import SegmentService
from closedloop_retention.settings import RetentionSettings
from closedloop_retention.suggestions.service import SuggestionService
from closedloop_retention.transport.events import EventHandlers
from closedloop_retention.transport.funnel_metrics import FunnelMetrics
from closedloop_retention.transport.grpc import SERVICE_NAME, RetentionServicer, register
from closedloop_retention.transport.http import UnsubscribeHttp
from closedloop_retention.transport.notice_worker import NoticeWorker
from closedloop_retention.transport.offers import OfferDispatcher
from closedloop_retention.transport.outcomes import Outcomes
from closedloop_retention.transport.workers import Workers
from closedloop_retention.winback.service import WinBackService
from loopkit.gateway_client import GatewayClient
from loopkit.identity_client import IdentityClient
from loopkit.periodic import every
from loopkit.runtime import ServiceDefinition, ServiceRuntime
from loopkit.uow import UnitOfWork
from loopkit.wechat.sender import MessageSender, SandboxSender

log = logging.getLogger(__name__)


def build(runtime: ServiceRuntime) -> None:
    settings = runtime.settings
    assert isinstance(settings, RetentionSettings)
    metrics.initialise()
    # Its consumers keep each customer's openid and WeCom contact for sends: open sealed values.
    runtime.reads_personal_data = True
    rules = RulesRepository()
    activity_rows, loyalty_rows, broadcast_rows = (
        ActivityRepository(),
        LoyaltyRepository(),
        BroadcastRepository(),
    )
    loyalty = LoyaltyService(runtime.outbox, rules, loyalty_rows)
    consent = ConsentService(
        runtime.outbox,
        secret=_unsubscribe_secret(settings),
        public_url=settings.public_base_url or f"http://{settings.http_host}:{settings.http_port}",
        activity_rows=activity_rows,
    )
    offers = WinBackService(runtime.outbox, consent)
    activity = ActivityService(runtime.outbox, rules, win_back(loyalty, offers), activity_rows)
    intake = ActivityIntake(activity, loyalty, rules, activity_rows)
    notices = NoticeService(consent)
    fission = FissionService(loyalty, notices)
    people = People(
        activity,
        activity_rows,
        loyalty_rows,
        broadcast_rows,
        consent=consent,
        offers=offers,
        fission=fission,
        notices=notices,
    )
    segments = SegmentService()
    broadcasts = BroadcastService(runtime.outbox, rules, segments, broadcast_rows, consent)
    c360_rows = Customer360Repository()
    # A forgotten customer's late or replayed events count in the funnel for nobody.
    funnel = FunnelService(FunnelRepository(), forgotten=c360_rows.erased_among)
    # GetCustomer360 asks identity who an id stands for (merges, identities); connects on first use.
    directory = IdentityClient.from_settings(settings)
    runtime.on_stop(directory.close)
    c360 = Customer360Service(c360_rows, activity=activity, loyalty=loyalty, directory=directory)
    uow = UnitOfWork(runtime.sessions, after_commit=runtime.wake_relay)
    servicer = RetentionServicer(
        uow,
        activity=activity,
        loyalty=loyalty,
        segments=segments,
        broadcasts=broadcasts,
        suggestions=SuggestionService(activity),
        funnel=funnel,
        offers=offers,
        consent=consent,
        c360=c360,
    )
    runtime.add_grpc(register(servicer), [SERVICE_NAME])
    runtime.add_http(UnsubscribeHttp(uow, consent).router())
    _expire_keys(runtime)
    clawback = RewardClawback(loyalty, loyalty_rows)
    handlers = EventHandlers(
        intake, loyalty, people, funnel, clawback=clawback, fission=fission, c360=c360
    )
    for subscription in handlers.subscriptions():
        runtime.add_subscription(subscription)
    runtime.add_subscription(Outcomes(broadcasts, offers).subscription())
    # What `python -m closedloop_retention.transport.rebuild_funnel` resets and restarts.
    runtime.parts.update(funnel=funnel, funnel_subscriptions=handlers.funnel_subscriptions())

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
        uow,
        activity=activity,
        broadcasts=broadcasts,
        sender=sender,
        page_size=settings.broadcast_page_size,
    )
    offer_dispatcher = OfferDispatcher(
        uow,
        offers=offers,
        consent=consent,
        sender=sender,
        batch=settings.dispatch_batch,
        text=settings.win_back_text,
        template_id=settings.win_back_template_id,
    )
    funnel_metrics = FunnelMetrics(
        uow,
        funnel,
        window=timedelta(days=settings.funnel_metrics_window_days),
        max_tenants=settings.funnel_metrics_max_tenants,
        # One replica computes them (docs/services/retention.md, "Funnel metrics").
        lease=runtime.lease("funnel metrics"),
    )
    notice_worker = NoticeWorker(uow, notices, sender, batch=settings.dispatch_batch)
    # for tests and operators
    runtime.parts.update(
        sender=sender,
        activity=activity,
        workers=workers,
        consent=consent,
        notices=notice_worker,
        funnel_metrics=funnel_metrics,
    )

    jobs = [
        (settings.dispatch_interval_s, workers.dispatch, "broadcast dispatch"),
        (settings.dispatch_interval_s, offer_dispatcher.dispatch, "win-back dispatch"),
        (settings.dispatch_interval_s, notice_worker.dispatch, "notice dispatch"),
    ]
    if runtime.serves_http:  # the gauges are read on /metrics, which only this process serves
        jobs.append((settings.funnel_metrics_interval_s, funnel_metrics.refresh, "funnel metrics"))
    for interval, tick, name in jobs:
        if interval > 0:
            runtime.add_worker(every(interval, tick, name=name))
    _lifecycle_sweep(runtime, settings.sweep_interval_s, workers, activity)


def _lifecycle_sweep(
    runtime: ServiceRuntime, interval_s: float, workers: Workers, activity: ActivityService
) -> None:
    """The periodic sweep, woken by a committed rules change to review the tenant's customers
    at once (other replicas find the marker on their next round)."""
    if interval_s <= 0:
        return
    review_wanted = asyncio.Event()
    activity.on_review_wanted = review_wanted.set
    runtime.add_worker(
        every(
            interval_s,
            workers.sweep_all,
            name="lifecycle sweep",
            wake=review_wanted,
            on_wake=workers.review_pending,
        )
    )


def _expire_keys(runtime: ServiceRuntime) -> None:
    """Idempotency keys last CLOSEDLOOP_IDEMPOTENCY_KEY_RETENTION_S, as CaptureLead's do, but
    those that make something count once ever (an order's, a reward's)."""
    # A client's ledger keys (redeem:, manual:); the ledger's own stay.
    ledger = Base.metadata.tables[LedgerRow.__tablename__]
    runtime.add_key_expiry(
        ledger,
        "idempotency_key",
        "created_at",
        where=or_(*(ledger.c.idempotency_key.startswith(p) for p in CLIENT_KEY_PREFIXES)),
    )
    # So do the keys of coupons (but a referral reward's), broadcasts, win-back offers (one per
    # customer and day) and finished notices (docs/operations.md, "Retries and idempotency keys").
    coupons = Base.metadata.tables[CouponRow.__tablename__]
    runtime.add_key_expiry(
        coupons,
        "idempotency_key",
        "issued_at",
        where=not_(coupons.c.idempotency_key.startswith(REWARD_KEY)),
    )
    for row_class in (BroadcastRow, WinBackOfferRow):
        runtime.add_key_expiry(
            Base.metadata.tables[row_class.__tablename__], "idempotency_key", "created_at"
        )
    notices_table = Base.metadata.tables[NoticeRow.__tablename__]
    runtime.add_key_expiry(
        notices_table,
        "idempotency_key",
        "created_at",
        where=notices_table.c.status.in_(FINISHED),
    )


def _unsubscribe_secret(settings: RetentionSettings) -> bytes:
    secret = settings.unsubscribe_secret.get_secret_value()
    if secret:
        return secret.encode()
    log.warning(
        "CLOSEDLOOP_RETENTION_UNSUBSCRIBE_SECRET is not set: unsubscribe links use a random "
        "secret and stop working when this process restarts"
    )
    return secrets.token_bytes(32)


DEFINITION = ServiceDefinition(
    spec=SPEC,
    metadata=Base.metadata,
    tables=kit,
    migrations_dir=Path(__file__).parent / "migrations",
    build=build,
    settings_cls=RetentionSettings,
)
