"""A channel's code, issued by WeChat through the gateway: a parametric QR code for a QR channel
(its scene inside), a WeCom "contact me" code for a contact-me channel (its state inside).

Codes are obtained before the channel's row is written (no transaction waits on WeChat) and a
contact-me code whose row could not be written is removed again, so a gateway or database outage
never leaves a channel half-created.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime

from closedloop_acquisition.catalog.specs import CODE_KINDS, ChannelSpec
from closedloop_acquisition.catalog.views import ChannelView
from closedloop_acquisition.wechat import WechatGateway
from loopkit.errors import FailedPrecondition, InvalidArgument

log = logging.getLogger(__name__)
# WeChat's longest temporary QR code.
MAX_TEMPORARY_S = 30 * 86400
NO_GATEWAY = "no WeChat gateway is configured: no code was issued for this channel"
RELEASED = "the channel ended: its contact-me code was removed at WeCom"
# WeCom's answer for a config_id it does not know (removed already).
UNKNOWN_CONFIG_ID = 41044


@dataclass(frozen=True)
class ChannelCode:
    ticket: str | None = None
    url: str | None = None
    image_url: str | None = None
    config_id: str | None = None
    # The account that issued it (the tenant's default when the channel named none).
    app_id: str = ""
    corp_id: str = ""
    # Why a channel of a kind with a code has none.
    note: str = ""


class ChannelCodes:
    def __init__(self, gateway: WechatGateway | None) -> None:
        self._gateway = gateway

    @property
    def enabled(self) -> bool:
        return self._gateway is not None

    async def obtain(self, tenant_id: str, spec: ChannelSpec, now: datetime) -> ChannelCode:
        """The code for a new channel (none for kinds without one). Raises InvalidArgument,
        NotFound, PermissionDenied (the account is not the tenant's) or DependencyUnavailable."""
        if spec.kind not in CODE_KINDS:
            return ChannelCode()
        if self._gateway is None:
            return ChannelCode(note=NO_GATEWAY)
        if spec.kind == "wecom_contact_way":
            if not spec.user_ids:
                raise InvalidArgument(
                    "a contact-me code needs the reps (userids) it adds as friends",
                    field="user_ids",
                )
            way = await self._gateway.create_contact_way(
                tenant_id, spec.corp_id, spec.state, list(spec.user_ids), spec.skip_verify
            )
            return ChannelCode(image_url=way.qr_code, config_id=way.config_id, corp_id=way.corp_id)
        expire = 0
        if spec.kind == "qr_temporary":
            assert spec.expires_at is not None  # validated
            expire = math.ceil((spec.expires_at - now).total_seconds())
            if expire > MAX_TEMPORARY_S:
                raise InvalidArgument(
                    "a temporary QR code lasts at most 30 days", field="expires_at"
                )
        qr = await self._gateway.create_qr_code(tenant_id, spec.app_id, spec.scene, expire)
        return ChannelCode(ticket=qr.ticket, url=qr.url, image_url=qr.image_url, app_id=qr.app_id)

    async def discard(self, tenant_id: str, code: ChannelCode) -> None:
        """Undo a code whose channel was not written (best effort: the write's error wins).
        A QR code needs nothing: unused, it is just a number WeChat will never hear of."""
        if self._gateway is None or not code.config_id:
            return
        try:
            await self._gateway.delete_contact_way(tenant_id, code.corp_id, code.config_id)
        except Exception:
            log.warning("could not remove the contact-me code of an unwritten channel")

    async def release(self, tenant_id: str, channel: ChannelView) -> None:
        """Remove a deleted channel's contact-me code at WeCom (before the row says so)."""
        if not channel.code_config_id or channel.code_released_at is not None:
            return
        if self._gateway is None:
            raise FailedPrecondition(
                "the channel's contact-me code can be removed only through the WeChat gateway, "
                "and none is configured",
                field="channel_id",
            )
        await self._gateway.delete_contact_way(tenant_id, channel.corp_id, channel.code_config_id)

    async def release_ended(self, tenant_id: str, corp_id: str, config_id: str) -> None:
        """Remove an ended channel's contact-me code at WeCom; a code WeCom no longer knows
        counts as removed. Raises DependencyUnavailable (try again later) or the refusal."""
        if self._gateway is None:
            raise FailedPrecondition("no WeChat gateway is configured", field="gateway_url")
        try:
            await self._gateway.delete_contact_way(tenant_id, corp_id, config_id)
        except FailedPrecondition as exc:
            if str(UNKNOWN_CONFIG_ID) not in str(exc):
                raise
