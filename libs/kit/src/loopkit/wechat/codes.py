"""What the gateway answers for a channel's code and for WeChat web authorization: a parametric
QR code, a WeCom "contact me" code, and who signed in (loopkit.gateway_client)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
