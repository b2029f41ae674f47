"""WeChat as acquisition's domain sees it: a port, free of transport.

The gateway service is the one place ClosedLoop talks to WeChat and WeCom. Acquisition needs it
for a channel's code (a parametric QR code, a WeCom "contact me" code) and for the H5 page's web
authorization. Domain code depends on `WechatGateway`; the kit's
`loopkit.gateway_client.GatewayClient` implements it over gRPC (the one client of the gateway,
the stage services' too).
Errors come back as domain errors (InvalidArgument, NotFound, PermissionDenied) or
DependencyUnavailable when the gateway or WeChat cannot be reached.
"""

from __future__ import annotations

from typing import Protocol

from loopkit.wechat.codes import SCOPE_BASE, SCOPE_USERINFO, ContactWay, QrCode, WebIdentity

__all__ = [
    "SCOPE_BASE",
    "SCOPE_USERINFO",
    "ContactWay",
    "QrCode",
    "WebIdentity",
    "WechatGateway",
]


class WechatGateway(Protocol):
    async def create_qr_code(
        self, tenant_id: str, app_id: str, scene: str, expire_seconds: int
    ) -> QrCode:
        """A parametric QR code; expire_seconds 0 = permanent."""
        ...

    async def create_contact_way(
        self, tenant_id: str, corp_id: str, state: str, user_ids: list[str], skip_verify: bool
    ) -> ContactWay: ...

    async def delete_contact_way(self, tenant_id: str, corp_id: str, config_id: str) -> None: ...

    async def build_oauth_url(
        self, tenant_id: str, app_id: str, redirect_uri: str, scope: str, state: str
    ) -> str:
        """The authorize page; it comes back to redirect_uri?code=...&state=..."""
        ...

    async def exchange_oauth_code(self, tenant_id: str, app_id: str, code: str) -> WebIdentity:
        """InvalidArgument for a bad or used code."""
        ...
