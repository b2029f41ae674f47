"""The RetentionService calls about win-back offers and consent (a mixin of the servicer, kept
apart so each module stays small). Each call is one unit of work around domain calls."""

from __future__ import annotations

import grpc

from closedloop.retention.v1 import retention_pb2 as pb
from closedloop_retention.clock import now
from closedloop_retention.consent.service import ConsentService
from closedloop_retention.transport.convert import delivery_to_pb
from closedloop_retention.winback.service import WinBackService
from closedloop_retention.winback.views import WinBackView
from loopkit.errors import InvalidArgument
from loopkit.tenancy import require_tenant
from loopkit.timestamps import ts
from loopkit.uow import UnitOfWork

OFFER_STATUS = {
    "scheduled": pb.WIN_BACK_STATUS_SCHEDULED,
    "sending": pb.WIN_BACK_STATUS_SCHEDULED,
    "sent": pb.WIN_BACK_STATUS_SENT,
    "skipped": pb.WIN_BACK_STATUS_SKIPPED,
    "failed": pb.WIN_BACK_STATUS_FAILED,
}
# Safe to retry: a read, an opt-out that is already recorded, a link that is the same each time.
IDEMPOTENT = ("ListWinBackOffers", "WithdrawConsent", "GetUnsubscribeLink")


def offer_to_pb(v: WinBackView) -> pb.WinBackOffer:
    return pb.WinBackOffer(
        win_back_id=v.id,
        customer_id=v.customer_id,
        coupon_id=v.coupon_id,
        value_minor=v.value_minor,
        owner_rep_id=v.owner_rep_id,
        attempt=v.attempt,
        status=OFFER_STATUS.get(v.status, pb.WIN_BACK_STATUS_UNSPECIFIED),
        reason=v.reason,
        message_id=v.message_id,
        created_at=ts(v.created_at),
        sent_at=ts(v.sent_at),
        delivery=delivery_to_pb(v.status == "sent", v.delivery),
        delivery_errcode=v.delivery_errcode,
    )


def _customer(customer_id: str) -> str:
    if not customer_id or len(customer_id) > 26:
        raise InvalidArgument("must be a customer id (1-26 characters)", field="customer_id")
    return customer_id


class OffersAndConsentRpcs:
    _uow: UnitOfWork
    _offers: WinBackService
    _consent: ConsentService

    async def ListWinBackOffers(
        self, request: pb.ListWinBackOffersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListWinBackOffersResponse:
        tenant = require_tenant(request.tenant_id)
        if request.customer_id:
            _customer(request.customer_id)
        offers = self._offers
        found = await self._uow.read(
            lambda s: offers.listed(s, tenant, request.customer_id, request.limit)
        )
        return pb.ListWinBackOffersResponse(offers=[offer_to_pb(v) for v in found])

    async def WithdrawConsent(
        self, request: pb.WithdrawConsentRequest, context: grpc.aio.ServicerContext
    ) -> pb.WithdrawConsentResponse:
        tenant = require_tenant(request.tenant_id)
        customer = _customer(request.customer_id)
        consent = self._consent
        withdrawn = await self._uow.run(
            lambda s: consent.withdraw(
                s, tenant, customer, request.channel, source="rpc", now=now()
            )
        )
        return pb.WithdrawConsentResponse(withdrawn=withdrawn)

    async def GetUnsubscribeLink(
        self, request: pb.GetUnsubscribeLinkRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetUnsubscribeLinkResponse:
        tenant = require_tenant(request.tenant_id)
        customer = _customer(request.customer_id)
        consent = self._consent
        url, token = consent.link(tenant, customer, request.channel)
        return pb.GetUnsubscribeLinkResponse(url=url, token=token)
