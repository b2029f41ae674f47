"""Wires the conversion service together; the only module that knows every part."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from closedloop_conversion import SPEC, metrics
from closedloop_conversion.customers.service import CustomerEvents
from closedloop_conversion.models import Base, kit
from closedloop_conversion.notices.service import NoticeService
from closedloop_conversion.ownership.changes import WELCOME_WINDOW_S
from closedloop_conversion.ownership.service import OwnershipService
from closedloop_conversion.ownership.transfers import TransferService
from closedloop_conversion.pipeline.followups import FollowUpService
from closedloop_conversion.pipeline.orders import OrderService
from closedloop_conversion.sales.service import SalesService
from closedloop_conversion.settings import ConversionSettings
from closedloop_conversion.tasks.service import TaskService
from closedloop_conversion.transport.events import EventHandlers
from closedloop_conversion.transport.grpc import SERVICE_NAME, ConversionServicer, register
from closedloop_conversion.transport.http import router
from closedloop_conversion.transport.notices import RepNotifier, assignment_subscription
from closedloop_conversion.transport.tasks import win_back_subscription
from closedloop_conversion.transport.workers import DayStartDrain, TransferSweeper
from loopkit.gateway_client import GatewayClient
from loopkit.identity_client import IdentityClient
from loopkit.runtime import ServiceDefinition, ServiceRuntime
from loopkit.uow import UnitOfWork
from loopkit.wechat.sender import MessageSender, SandboxSender


def build(runtime: ServiceRuntime) -> None:
    settings = runtime.settings
    assert isinstance(settings, ConversionSettings)
    # Reps are told of the leads they are given in the assignment's own transaction.
    notices = NoticeService(settings.account_registry(), gateway=bool(settings.gateway_url))
    sales = SalesService(runtime.outbox, notices)
    transfers = TransferService(
        runtime.outbox,
        sales,
        auto_takeover=timedelta(seconds=settings.transfer_auto_takeover_s),
    )
    ownership = OwnershipService(runtime.outbox, transfers)
    follow_ups = FollowUpService(runtime.outbox, sales)
    orders = OrderService(runtime.outbox, sales)
    directory = IdentityClient.from_settings(settings)
    runtime.on_stop(directory.close)
    sender: MessageSender
    gateway: GatewayClient | None = None
    if settings.gateway_url:
        # A welcome must be known sent within WeCom's window: the sender waits that long.
        gateway = GatewayClient.connect(
            settings.gateway_url,
            timeout_s=settings.gateway_timeout_s,
            api_token=settings.api_token,
            outcome_wait_s=WELCOME_WINDOW_S,
        )
        runtime.on_stop(gateway.close)
        sender = gateway
    else:
        sandbox_log = settings.state_dir / settings.sandbox_log if settings.sandbox_log else None
        sender = SandboxSender(sandbox_log)
    # Workers' own commits wake only the relay (a sweep does not wake itself).
    workers_uow = UnitOfWork(runtime.sessions, after_commit=runtime.wake_relay)
    sweeper = TransferSweeper(
        workers_uow,
        transfers,
        interval_s=settings.transfer_sweep_interval_s,
        wecom=gateway,
    )
    runtime.add_worker(sweeper.worker())
    runtime.add_worker(DayStartDrain(workers_uow, sales).worker())
    notifier = (
        RepNotifier(workers_uow, notices, gateway, interval_s=settings.rep_notice_interval_s)
        if gateway is not None
        else None
    )
    if notifier is not None:
        runtime.add_worker(notifier.worker())
        notices.on_stored(notifier.wake)  # a stored notice is handed over now

    def after_commit() -> None:
        runtime.wake_relay()
        sweeper.wake()  # a new transfer is asked of WeCom now, not at the next round

    uow = UnitOfWork(runtime.sessions, after_commit=after_commit)
    runtime.add_http(
        router(
            settings,
            uow,
            directory=directory,
            ownership=ownership,
            follow_ups=follow_ups,
            sender=sender,
            contacts=gateway,
        )
    )
    tasks = TaskService(notices)
    servicer = ConversionServicer(
        uow,
        sales=sales,
        ownership=ownership,
        transfers=transfers,
        follow_ups=follow_ups,
        orders=orders,
        tasks=tasks,
    )
    runtime.add_grpc(register(servicer), [SERVICE_NAME])
    for subscription in EventHandlers(sales, CustomerEvents()).subscriptions():
        runtime.add_subscription(subscription)
    runtime.add_subscription(win_back_subscription(tasks))
    runtime.add_subscription(assignment_subscription(notices))
    metrics.export_zeros()


DEFINITION = ServiceDefinition(
    spec=SPEC,
    metadata=Base.metadata,
    tables=kit,
    migrations_dir=Path(__file__).parent / "migrations",
    build=build,
    settings_cls=ConversionSettings,
)
