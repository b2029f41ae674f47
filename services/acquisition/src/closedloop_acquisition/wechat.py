"""WeChat as acquisition's domain sees it: a port, free of transport.

The gateway service is the one place ClosedLoop talks to WeChat and WeCom. Acquisition needs it
for a channel's code (a parametric QR code, a WeCom "contact me" code) and for the H5 page's web
authorization. Domain code depends on `WechatGateway`; `transport.gateway` implements it over gRPC.
Errors come back as domain errors (InvalidArgument, NotFound, PermissionDenied) or
DependencyUnavailable when the gateway or WeChat cannot be reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

# Web authorization scopes: silent (openid only) or asking the person (openid and unionid).
SCOPE_BASE = "snsapi_base"
SCOPE_USERINFO = "snsapi_userinfo"


@dataclass(frozen=True)
class QrCode:
    app_id: str
    ticket: str
    # The URL the code encodes, and the code's image.
    url: str
    image_url: str
    expires_at: datetime | None


@dataclass(frozen=True)
class ContactWay:
    corp_id: str
    config_id: str
    # URL of the code's image.
    qr_code: str


@dataclass(frozen=True)
class WebIdentity:
    """Who signed in through WeChat web authorization: WeChat's word, hence verified."""

    app_id: str
    openid: str
    unionid: str


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
