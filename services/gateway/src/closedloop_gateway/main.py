"""Wires the gateway together; the only module that knows every part."""

from __future__ import annotations

import os
import secrets
import socket
from datetime import timedelta
from pathlib import Path

from closedloop_gateway import SPEC, metrics
from closedloop_gateway.models import Base, SendRow, TransferRequestRow, kit
from closedloop_gateway.operations.service import GatewayOperations
from closedloop_gateway.operations.transfers import IdempotentTransfers
from closedloop_gateway.quotas.limits import parse_limits
from closedloop_gateway.quotas.pace_share import PaceShare
from closedloop_gateway.quotas.service import Quotas
from closedloop_gateway.sends.executor import SendExecutor
from closedloop_gateway.sends.model import FAILED, SENT
from closedloop_gateway.sends.service import RetryPolicy, SendService
from closedloop_gateway.settings import GatewaySettings
from closedloop_gateway.tokens.manager import TokenManager
from closedloop_gateway.transport import events
from closedloop_gateway.transport.grpc import SERVICE_NAME, GatewayServicer, register
from closedloop_gateway.transport.refresher import TokenRefresher
from closedloop_gateway.transport.replicas import run_heartbeat
from closedloop_gateway.transport.send_worker import SendWorker
from closedloop_gateway.wechat.caller import WeChatCaller
from closedloop_gateway.wechat.clients import WeChatHttp
from loopkit.runtime import ServiceDefinition, ServiceRuntime


def build(runtime: ServiceRuntime) -> None:
    settings = runtime.settings
    assert isinstance(settings, GatewaySettings)
    metrics.start()
    # Its consumers learn each customer's openids from touches: open sealed values.
    runtime.reads_personal_data = True
    registry = settings.account_registry()
    http = WeChatHttp(
        registry,
        wechat_api_base=settings.wechat_api_base,
        wechat_oauth_base=settings.wechat_oauth_base,
        wecom_api_base=settings.wecom_api_base,
        timeout_s=settings.wechat_timeout_s,
        threads=settings.wechat_threads,
    )
    holder = settings.replica_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    tokens = TokenManager(
        runtime.sessions,
        http,
        holder=holder,
        refresh_ahead_s=settings.token_refresh_ahead_s,
        lease_s=settings.token_lease_s,
    )
    quotas = Quotas(
        runtime.sessions,
        parse_limits(settings.quotas),
        headroom=settings.quota_headroom,
        rate_limit_pause_s=settings.rate_limit_pause_s,
        hold_off_s=settings.pace_heartbeat_s * 1.5,
    )
    caller = WeChatCaller(http, tokens, quotas)
    operations = GatewayOperations(registry, caller, mp_base=settings.wechat_mp_base)
    retry = RetryPolicy(
        max_attempts=settings.send_max_attempts,
        base_s=settings.send_retry_base_s,
        max_s=settings.send_retry_max_s,
    )
    sends = SendService(
        runtime.outbox,
        registry,
        service_window=timedelta(seconds=settings.service_window_s),
        retry=retry,
    )
    worker = SendWorker(
        runtime.sessions,
        sends,
        SendExecutor(registry, caller, retry),
        holder=holder,
        concurrency=settings.send_concurrency,
        lease_s=settings.send_lease_s,
        poll_interval_s=settings.send_poll_interval_s,
        after_commit=runtime.wake_relay,
    )
    # A transfer's key is in doubt as long as a send's claim would be (one WeCom call or a few).
    transfers = IdempotentTransfers(runtime.sessions, operations, lease_s=settings.send_lease_s)
    servicer = GatewayServicer(runtime.sessions, operations, transfers, sends, worker.wake)
    runtime.add_grpc(register(servicer), [SERVICE_NAME])
    runtime.add_worker(worker.run)
    # Idempotency keys last CLOSEDLOOP_IDEMPOTENCY_KEY_RETENTION_S, as CaptureLead's do: a
    # finished send forgets its key (the send stays), a transfer's request row goes.
    sends_table = Base.metadata.tables[SendRow.__tablename__]
    runtime.add_key_expiry(
        sends_table,
        "idempotency_key",
        "created_at",
        where=sends_table.c.status.in_((SENT, FAILED)),  # a paused send may still go
    )
    runtime.add_expiry(
        Base.metadata.tables[TransferRequestRow.__tablename__],
        "created_at",
        settings.idempotency_key_retention_s,
    )
    for subscription in events.subscriptions():
        runtime.add_subscription(subscription)
    share = PaceShare(
        runtime.sessions, quotas, holder=holder, heartbeat_s=settings.pace_heartbeat_s
    )
    runtime.add_worker(lambda stop: run_heartbeat(share, settings.pace_heartbeat_s, stop))
    refresher = TokenRefresher(tokens, registry, settings.token_check_interval_s)
    runtime.add_worker(refresher.run)
    runtime.parts["caller"] = caller
    runtime.parts["servicer"] = servicer

    async def close() -> None:
        http.close()

    runtime.on_stop(close)


DEFINITION = ServiceDefinition(
    spec=SPEC,
    metadata=Base.metadata,
    tables=kit,
    migrations_dir=Path(__file__).parent / "migrations",
    build=build,
    settings_cls=GatewaySettings,
)
