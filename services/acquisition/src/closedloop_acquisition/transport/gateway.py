"""`WechatGateway` over gRPC: the gateway service as acquisition calls it."""

from __future__ import annotations

import grpc

from closedloop.gateway.v1 import gateway_pb2 as gw
from closedloop.gateway.v1 import gateway_pb2_grpc
from closedloop_acquisition.settings import AcquisitionSettings
from closedloop_acquisition.wechat import SCOPE_USERINFO, ContactWay, QrCode, WebIdentity
from loopkit.grpc_client import make_channel, translate_error
from loopkit.timestamps import from_ts

SERVICE = "closedloop.gateway.v1.GatewayService"
# Safe to repeat: a second QR ticket for the same scene is harmless, a URL is only built, and a
# contact way deleted twice is gone. Never repeated: a contact way (two codes) and a code exchange
# (WeChat's codes work once).
_RETRIED = [(SERVICE, m) for m in ("CreateQrCode", "BuildOAuthUrl", "DeleteContactWay")]

# Our token refused, or a conflict at the gateway: acquisition's callers did nothing wrong, so
# these are an outage of the gateway to them (UNAVAILABLE), never a refusal passed on.
_OUTAGES = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.ABORTED)


def _translate(exc: grpc.aio.AioRpcError) -> Exception:
    return translate_error(exc, "WeChat gateway", outages=_OUTAGES)


class GatewayClient:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel
        self._stub = gateway_pb2_grpc.GatewayServiceStub(channel)  # type: ignore[no-untyped-call]

    @classmethod
    def from_settings(cls, settings: AcquisitionSettings) -> GatewayClient:
        token = settings.api_token.get_secret_value() if settings.api_token else None
        channel = make_channel(
            settings.gateway_url,
            idempotent=_RETRIED,
            default_timeout_s=settings.gateway_timeout_s,
            api_token=token,
        )
        return cls(channel)

    async def close(self) -> None:
        await self._channel.close()

    async def create_qr_code(
        self, tenant_id: str, app_id: str, scene: str, expire_seconds: int
    ) -> QrCode:
        request = gw.CreateQrCodeRequest(
            tenant_id=tenant_id, app_id=app_id, scene_str=scene, expire_seconds=expire_seconds
        )
        try:
            answer = await self._stub.CreateQrCode(request, metadata=_tenant(tenant_id))
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from None
        return QrCode(
            app_id=answer.app_id,
            ticket=answer.ticket,
            url=answer.url,
            image_url=answer.image_url,
            expires_at=from_ts(answer.expires_at, answer.HasField("expires_at")),
        )

    async def create_contact_way(
        self, tenant_id: str, corp_id: str, state: str, user_ids: list[str], skip_verify: bool
    ) -> ContactWay:
        request = gw.CreateContactWayRequest(
            tenant_id=tenant_id,
            corp_id=corp_id,
            state=state,
            user_ids=user_ids,
            skip_verify=skip_verify,
        )
        try:
            answer = await self._stub.CreateContactWay(request, metadata=_tenant(tenant_id))
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from None
        return ContactWay(
            corp_id=answer.corp_id, config_id=answer.config_id, qr_code=answer.qr_code
        )

    async def delete_contact_way(self, tenant_id: str, corp_id: str, config_id: str) -> None:
        request = gw.DeleteContactWayRequest(
            tenant_id=tenant_id, corp_id=corp_id, config_id=config_id
        )
        try:
            await self._stub.DeleteContactWay(request, metadata=_tenant(tenant_id))
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from None

    async def build_oauth_url(
        self, tenant_id: str, app_id: str, redirect_uri: str, scope: str, state: str
    ) -> str:
        request = gw.BuildOAuthUrlRequest(
            tenant_id=tenant_id,
            app_id=app_id,
            redirect_uri=redirect_uri,
            scope=gw.OAUTH_SCOPE_USERINFO if scope == SCOPE_USERINFO else gw.OAUTH_SCOPE_BASE,
            state=state,
        )
        try:
            answer = await self._stub.BuildOAuthUrl(request, metadata=_tenant(tenant_id))
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from None
        return str(answer.url)

    async def exchange_oauth_code(self, tenant_id: str, app_id: str, code: str) -> WebIdentity:
        request = gw.ExchangeOAuthCodeRequest(tenant_id=tenant_id, app_id=app_id, code=code)
        try:
            answer = await self._stub.ExchangeOAuthCode(request, metadata=_tenant(tenant_id))
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from None
        return WebIdentity(app_id=answer.app_id, openid=answer.openid, unionid=answer.unionid)


def _tenant(tenant_id: str) -> list[tuple[str, str]]:
    return [("x-tenant-id", tenant_id)]
