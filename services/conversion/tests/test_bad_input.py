"""Bad input gets a reason and a status a client can act on, never INTERNAL (or HTTP 500)."""

from __future__ import annotations

import grpc
import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from closedloop.common.v1 import common_pb2 as c
from closedloop.conversion.v1 import conversion_pb2 as pb
from closedloop.events.v1 import conversion_events_pb2 as ev

BAD = grpc.StatusCode.INVALID_ARGUMENT
MISSING = grpc.StatusCode.NOT_FOUND


def far_future() -> Timestamp:
    return Timestamp(seconds=10**12)


@pytest.mark.parametrize("conversion", ["sqlite"], indirect=True)
async def test_bad_requests_are_refused_with_a_reason(stub, tenant, conversion):
    cases = [
        ("CreateRep", pb.CreateRepRequest(tenant_id=tenant), BAD),
        ("CreateRep", pb.CreateRepRequest(tenant_id="bad tenant!", wecom_user_id="x"), BAD),
        ("CreateRep", pb.CreateRepRequest(tenant_id=tenant, wecom_user_id="x" * 500), BAD),
        (
            "CreateRep",
            pb.CreateRepRequest(tenant_id=tenant, wecom_user_id="x", tags=["t" * 99]),
            BAD,
        ),
        (
            "CreateRep",
            pb.CreateRepRequest(
                tenant_id=tenant,
                wecom_user_id="x",
                working_hours=pb.WorkingHours(
                    weekdays=[9], start="09:00", end="10:00", time_zone="Asia/Shanghai"
                ),
            ),
            BAD,
        ),
        (
            "CreateRep",
            pb.CreateRepRequest(
                tenant_id=tenant,
                wecom_user_id="x",
                working_hours=pb.WorkingHours(
                    weekdays=[1], start="09:00", end="10:00", time_zone="Mars/Olympus"
                ),
            ),
            BAD,
        ),
        ("UpdateRep", pb.UpdateRepRequest(tenant_id=tenant, rep_id="nobody"), MISSING),
        ("ListReps", pb.ListRepsRequest(tenant_id=tenant, status=42), BAD),
        ("SetAssignmentRule", pb.SetAssignmentRuleRequest(tenant_id=tenant), BAD),
        (
            "SetAssignmentRule",
            pb.SetAssignmentRuleRequest(
                tenant_id=tenant, rule=pb.AssignmentRule(kind=pb.ASSIGNMENT_RULE_KIND_TAG)
            ),
            BAD,
        ),
        ("AssignLead", pb.AssignLeadRequest(tenant_id=tenant, lead_id="nope"), MISSING),
        ("ReassignLead", pb.ReassignLeadRequest(tenant_id=tenant, lead_id="nope"), MISSING),
        ("CloseLead", pb.CloseLeadRequest(tenant_id=tenant, lead_id="nope"), BAD),
        ("SetContactWay", pb.SetContactWayRequest(tenant_id=tenant), BAD),
        ("TransferCustomers", pb.TransferCustomersRequest(tenant_id=tenant), BAD),
        (
            "ReportTransferResult",
            pb.ReportTransferResultRequest(
                tenant_id=tenant, transfer_id="nope", status=pb.TRANSFER_STATUS_COMPLETED
            ),
            MISSING,
        ),
        ("SweepTransfers", pb.SweepTransfersRequest(tenant_id=tenant, as_of=far_future()), BAD),
        (
            "LogFollowUp",
            pb.LogFollowUpRequest(
                tenant_id=tenant,
                customer_id="c",
                rep_id="r",
                kind=ev.FOLLOW_UP_KIND_NOTE,
                at=far_future(),
            ),
            BAD,
        ),
        ("SetPipelineStages", pb.SetPipelineStagesRequest(tenant_id=tenant, stages=["won"]), BAD),
        ("CreateOpportunity", pb.CreateOpportunityRequest(tenant_id=tenant, customer_id="c"), BAD),
        (
            "CreateOpportunity",
            pb.CreateOpportunityRequest(tenant_id=tenant, customer_id="c", lead_id="nope"),
            MISSING,
        ),
        (
            "MoveOpportunity",
            pb.MoveOpportunityRequest(tenant_id=tenant, opportunity_id="x"),
            MISSING,
        ),
        (
            "RecordOrder",
            pb.RecordOrderRequest(
                tenant_id=tenant, customer_id="c", amount=c.Money(currency="CNY", amount_minor=-5)
            ),
            BAD,
        ),
        (
            "RecordOrder",
            pb.RecordOrderRequest(
                tenant_id=tenant, customer_id="c", amount=c.Money(currency="BTC", amount_minor=5)
            ),
            BAD,
        ),
        ("RefundOrder", pb.RefundOrderRequest(tenant_id=tenant, order_id="nope"), MISSING),
        ("GetRepReport", pb.GetRepReportRequest(tenant_id=tenant, rep_id="nobody"), MISSING),
        (
            "GetRepReport",
            pb.GetRepReportRequest(tenant_id=tenant, **{"from": Timestamp(seconds=2_000_000_000)}),
            BAD,
        ),
    ]
    for method, request, code in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await getattr(stub, method)(request)
        assert err.value.code() == code, (method, request, err.value.details())
        assert err.value.details(), method

    async with httpx.AsyncClient(
        base_url=conversion.http_url, headers=conversion.headers()
    ) as client:
        answers = [
            await client.post(f"/v1/tenants/{tenant}/chat-archive", json={"messages": "x"}),
            await client.post(f"/v1/tenants/{tenant}/chat-archive", json=[1, 2]),
            await client.post("/v1/tenants/bad tenant!/chat-archive", json={"messages": []}),
            await client.post(f"/v1/tenants/{tenant}/chat-archive", json={"messages": [{}] * 1001}),
            await client.post("/v1/wecom/ww-conv-corp/callback", content=b"\x00" * 100),
            await client.get("/v1/wecom/ww-conv-corp/callback"),
        ]
    for answer in answers:
        assert 400 <= answer.status_code < 500, answer.text
        assert "error" in answer.json()
