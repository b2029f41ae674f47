"""The GatewayService gRPC servicer: thin; the domain validates, calls WeChat and stores."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from closedloop.gateway.v1 import gateway_pb2 as pb
from closedloop.gateway.v1 import gateway_pb2_grpc
from closedloop_gateway.models import SendRow
from closedloop_gateway.operations.service import GatewayOperations
from closedloop_gateway.operations.transfers import IdempotentTransfers, TransferRequest
from closedloop_gateway.quotas.service import QuotaPaused
from closedloop_gateway.sends.service import SendService
from closedloop_gateway.transport import convert
from closedloop_gateway.transport.submits import SubmitQueue
from loopkit.db import transact, transact_read
from loopkit.errors import DomainError, InvalidArgument
from loopkit.grpc_server import status_of
from loopkit.tenancy import require_tenant
from loopkit.timestamps import now

T = TypeVar("T")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["GatewayService"].full_name
_SCOPES = {
    pb.OAUTH_SCOPE_UNSPECIFIED: False,
    pb.OAUTH_SCOPE_BASE: False,
    pb.OAUTH_SCOPE_USERINFO: True,
}


async def _paced(context: grpc.aio.ServicerContext, work: Awaitable[T]) -> T:
    """A paused API answers RESOURCE_EXHAUSTED with when it resumes."""
    try:
        return await work
    except QuotaPaused as exc:
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        raise  # unreachable: abort raises


# A broadcast's page: one statement stores them all.
MAX_SENDS_PER_CALL = 500


def _result_pb(result: tuple[SendRow, bool] | DomainError) -> pb.SendMessageResult:
    if isinstance(result, DomainError):
        return pb.SendMessageResult(
            error_code=status_of(result).value[0], error_message=str(result)
        )
    row, created = result
    return pb.SendMessageResult(send=convert.send_to_pb(row), created=created)


class GatewayServicer(gateway_pb2_grpc.GatewayServiceServicer):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        operations: GatewayOperations,
        transfers: IdempotentTransfers,
        sends: SendService,
        after_submit: Callable[[], None],
    ) -> None:
        self._sessions = sessions
        self._ops = operations
        self._transfers = transfers
        self._sends = sends
        self._after_submit = after_submit
        # Concurrent SendMessage calls are stored together, as a SendMessages page is.
        self.submits = SubmitQueue(sessions, sends, after_submit, max_batch=MAX_SENDS_PER_CALL)

    async def SendMessage(
        self, request: pb.SendMessageRequest, context: grpc.aio.ServicerContext
    ) -> pb.SendMessageResponse:
        tenant = require_tenant(request.tenant_id)
        new = convert.new_send_from_pb(tenant, request)
        row, created = await self.submits.submit(new)
        return pb.SendMessageResponse(send=convert.send_to_pb(row), created=created)

    async def SendMessages(
        self, request: pb.SendMessagesRequest, context: grpc.aio.ServicerContext
    ) -> pb.SendMessagesResponse:
        tenant = require_tenant(request.tenant_id)
        if not 1 <= len(request.sends) <= MAX_SENDS_PER_CALL:
            raise InvalidArgument(f"name 1 to {MAX_SENDS_PER_CALL} sends", field="sends")
        if any(item.tenant_id not in ("", tenant) for item in request.sends):
            raise InvalidArgument("every send belongs to the request's tenant", field="sends")
        news = [convert.new_send_from_pb(tenant, item) for item in request.sends]
        results = await transact(
            self._sessions, lambda s: self._sends.submit_many(s, news, now()), autocommit=True
        )
        if any(not isinstance(r, DomainError) and r[1] for r in results):
            self._after_submit()
        return pb.SendMessagesResponse(results=[_result_pb(r) for r in results])

    async def GetSend(
        self, request: pb.GetSendRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetSendResponse:
        tenant = require_tenant(request.tenant_id)
        row = await transact_read(
            self._sessions,
            lambda s: self._sends.get(s, tenant, request.send_id, request.idempotency_key),
        )
        return pb.GetSendResponse(send=convert.send_to_pb(row))

    async def CreateQrCode(
        self, request: pb.CreateQrCodeRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateQrCodeResponse:
        tenant = require_tenant(request.tenant_id)
        code = await _paced(
            context,
            self._ops.create_qr_code(
                tenant, request.app_id, request.scene_str, request.expire_seconds
            ),
        )
        return convert.qr_code_to_pb(code)

    async def CreateContactWay(
        self, request: pb.CreateContactWayRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateContactWayResponse:
        tenant = require_tenant(request.tenant_id)
        way = await _paced(
            context,
            self._ops.create_contact_way(
                tenant, request.corp_id, request.state, list(request.user_ids), request.skip_verify
            ),
        )
        return pb.CreateContactWayResponse(
            corp_id=way.corp_id, config_id=way.config_id, qr_code=way.qr_code
        )

    async def DeleteContactWay(
        self, request: pb.DeleteContactWayRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteContactWayResponse:
        tenant = require_tenant(request.tenant_id)
        await _paced(
            context, self._ops.delete_contact_way(tenant, request.corp_id, request.config_id)
        )
        return pb.DeleteContactWayResponse()

    async def BuildOAuthUrl(
        self, request: pb.BuildOAuthUrlRequest, context: grpc.aio.ServicerContext
    ) -> pb.BuildOAuthUrlResponse:
        tenant = require_tenant(request.tenant_id)
        if request.scope not in _SCOPES:
            raise InvalidArgument("unknown scope", field="scope")
        app_id, url = self._ops.build_oauth_url(
            tenant, request.app_id, request.redirect_uri, _SCOPES[request.scope], request.state
        )
        return pb.BuildOAuthUrlResponse(app_id=app_id, url=url)

    async def ExchangeOAuthCode(
        self, request: pb.ExchangeOAuthCodeRequest, context: grpc.aio.ServicerContext
    ) -> pb.ExchangeOAuthCodeResponse:
        tenant = require_tenant(request.tenant_id)
        found = await _paced(
            context, self._ops.exchange_oauth_code(tenant, request.app_id, request.code)
        )
        return pb.ExchangeOAuthCodeResponse(
            app_id=found.app_id, openid=found.openid, unionid=found.unionid
        )

    async def GetExternalContact(
        self, request: pb.GetExternalContactRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetExternalContactResponse:
        tenant = require_tenant(request.tenant_id)
        contact = await _paced(
            context,
            self._ops.get_external_contact(tenant, request.corp_id, request.external_userid),
        )
        return convert.external_contact_to_pb(contact)

    async def TransferCustomers(
        self, request: pb.TransferCustomersRequest, context: grpc.aio.ServicerContext
    ) -> pb.TransferCustomersResponse:
        transfer = TransferRequest(
            tenant_id=require_tenant(request.tenant_id),
            idempotency_key=request.idempotency_key,
            corp_id=request.corp_id,
            handover_userid=request.handover_userid,
            takeover_userid=request.takeover_userid,
            external_userids=tuple(request.external_userids),
            resigned=request.resigned,
            success_msg=request.transfer_success_msg,
        )
        outcomes = await _paced(context, self._transfers.transfer(transfer))
        return pb.TransferCustomersResponse(
            customers=[
                pb.CustomerTransfer(external_userid=o.external_userid, errcode=o.errcode)
                for o in outcomes
            ]
        )

    async def GetTransferResult(
        self, request: pb.GetTransferResultRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTransferResultResponse:
        tenant = require_tenant(request.tenant_id)
        results = await _paced(
            context,
            self._ops.transfer_result(
                tenant,
                request.corp_id,
                request.handover_userid,
                request.takeover_userid,
                resigned=request.resigned,
            ),
        )
        return pb.GetTransferResultResponse(
            customers=[convert.transfer_result_to_pb(r) for r in results]
        )

    async def GetQuotaStatus(
        self, request: pb.GetQuotaStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetQuotaStatusResponse:
        tenant = require_tenant(request.tenant_id)
        status = await self._ops.quota_status(tenant, request.app_id, request.corp_id)
        return pb.GetQuotaStatusResponse(
            account_id=status.account_id,
            apis=[convert.quota_to_pb(v) for v in status.apis],
            application_account_id=status.application_account_id,
            application_apis=[convert.quota_to_pb(v) for v in status.application_apis],
        )


def register(servicer: GatewayServicer) -> Callable[[grpc.aio.Server], None]:
    def add(server: grpc.aio.Server) -> None:
        gateway_pb2_grpc.add_GatewayServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]

    return add
