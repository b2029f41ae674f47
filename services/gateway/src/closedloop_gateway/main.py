"""Wires the gateway together; the only module that knows every part."""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

from closedloop_gateway import SPEC, metrics
from closedloop_gateway.accounts.registry import AccountRegistry
from closedloop_gateway.models import Base, kit
from closedloop_gateway.operations.service import GatewayOperations
from closedloop_gateway.quotas.limits import parse_limits
from closedloop_gateway.quotas.service import Quotas
from closedloop_gateway.settings import GatewaySettings
from closedloop_gateway.tokens.manager import TokenManager
from closedloop_gateway.transport.grpc import SERVICE_NAME, GatewayServicer, register
from closedloop_gateway.transport.refresher import TokenRefresher
from closedloop_gateway.wechat.caller import WeChatCaller
from closedloop_gateway.wechat.clients import WeChatHttp
from loopkit.runtime import ServiceDefinition, ServiceRuntime


def build(runtime: ServiceRuntime) -> None:
    settings = runtime.settings
    assert isinstance(settings, GatewaySettings)
    metrics.start()
    registry = AccountRegistry.load(settings.accounts, settings.accounts_file)
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
    )
    caller = WeChatCaller(http, tokens, quotas)
    operations = GatewayOperations(registry, caller, mp_base=settings.wechat_mp_base)
    runtime.add_grpc(register(GatewayServicer(operations)), [SERVICE_NAME])
    refresher = TokenRefresher(tokens, registry, settings.token_check_interval_s)
    runtime.add_worker(refresher.run)
    runtime.parts["caller"] = caller

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
