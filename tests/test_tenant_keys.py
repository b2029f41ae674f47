"""Per-tenant callers across real services: a key for tenant A captures leads for A and is refused
for B; acquisition reaches identity with its own service key; a read-only key only reads.
On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
import pytest_asyncio

import closedloop_acquisition.main
import closedloop_conversion.main
import closedloop_identity.main
from closedloop.acquisition.v1 import acquisition_pb2 as apb
from closedloop.acquisition.v1 import acquisition_pb2_grpc
from loopkit.callers import KeyStore
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import PostgresServer, running_service


@dataclass
class Platform:
    acquisition_target: str
    conversion_http: str
    keys: KeyStore


@pytest_asyncio.fixture(loop_scope="session", params=["sqlite", "postgres"])
async def platform(
    request: pytest.FixtureRequest, nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[Platform]:
    keys = KeyStore(tmp_path / "keys.json")
    service_key = keys.add("services", ["*"], "service")
    urls = {}
    for name in ("identity", "acquisition", "conversion"):
        if request.param == "postgres":
            pg: PostgresServer = request.getfixturevalue("postgres")
            urls[name] = await pg.fresh_database()
        else:
            urls[name] = f"sqlite+aiosqlite:///{tmp_path}/{name}.db"
    common = {"api_keys_file": keys.path, "api_token": service_key}
    async with (
        running_service(
            closedloop_identity.main.DEFINITION,
            database_url=urls["identity"],
            nats_url=nats_server.url,
            state_dir=tmp_path,
            **common,
        ) as identity,
        running_service(
            closedloop_acquisition.main.DEFINITION,
            database_url=urls["acquisition"],
            nats_url=nats_server.url,
            state_dir=tmp_path,
            identity_url=identity.grpc_target,
            **common,
        ) as acquisition,
        running_service(
            closedloop_conversion.main.DEFINITION,
            database_url=urls["conversion"],
            nats_url=nats_server.url,
            state_dir=tmp_path,
            identity_url=identity.grpc_target,
            shutdown_grace_s=0.5,
            **common,
        ) as conversion,
    ):
        yield Platform(acquisition.grpc_target, conversion.http_url, keys)


async def _code(call) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_a_tenants_key_works_for_that_tenant_only(platform: Platform) -> None:
    writer_a = platform.keys.add("crm-a", ["t-key-a"], "write")
    reader_a = platform.keys.add("reporting-a", ["t-key-a"], "read")
    async with grpc.aio.insecure_channel(platform.acquisition_target) as channel:
        stub = acquisition_pb2_grpc.AcquisitionServiceStub(channel)
        auth_a = [("authorization", f"Bearer {writer_a}")]
        campaign = (
            await stub.CreateCampaign(
                apb.CreateCampaignRequest(tenant_id="t-key-a", name="Keys"), metadata=auth_a
            )
        ).campaign
        page = (
            await stub.CreateLandingPage(
                apb.CreateLandingPageRequest(
                    tenant_id="t-key-a",
                    campaign_id=campaign.campaign_id,
                    title="Trial",
                    fields=[apb.FormField(name="phone", type=apb.FIELD_TYPE_PHONE, required=True)],
                ),
                metadata=auth_a,
            )
        ).page
        capture = apb.CaptureLeadRequest(
            tenant_id="t-key-a", page_id=page.page_id, values={"phone": "13500135000"}
        )
        # Acquisition resolves the customer in identity with its own service key on the way.
        lead = (await stub.CaptureLead(capture, metadata=auth_a)).lead
        assert lead.customer_id

        other = apb.CreateCampaignRequest(tenant_id="t-key-b", name="Not mine")
        assert await _code(stub.CreateCampaign(other, metadata=auth_a)) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
        auth_read = [("authorization", f"Bearer {reader_a}")]
        get = apb.GetLeadRequest(tenant_id="t-key-a", lead_id=lead.lead_id)
        assert (await stub.GetLead(get, metadata=auth_read)).lead.lead_id == lead.lead_id
        assert await _code(stub.CaptureLead(capture, metadata=auth_read)) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
        assert await _code(stub.GetLead(get)) == grpc.StatusCode.UNAUTHENTICATED


async def test_the_chat_archive_upload_needs_a_write_key_for_its_tenant(platform: Platform) -> None:
    writer_a = platform.keys.add("crm-a", ["t-key-a"], "write")
    reader_a = platform.keys.add("reporting-a", ["t-key-a"], "read")
    body = {"messages": []}
    async with httpx.AsyncClient(base_url=platform.conversion_http) as http:

        async def post(tenant: str, key: str | None) -> int:
            headers = {"authorization": f"Bearer {key}"} if key else {}
            answer = await http.post(
                f"/v1/tenants/{tenant}/chat-archive", json=body, headers=headers
            )
            return answer.status_code

        assert await post("t-key-a", writer_a) == 200
        assert await post("t-key-b", writer_a) == 403
        assert await post("t-key-a", reader_a) == 403
        assert await post("t-key-a", None) == 401
