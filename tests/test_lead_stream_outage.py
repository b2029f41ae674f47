"""PostgreSQL goes away under a stream of leads from acquisition to conversion: nothing is
dead-lettered, every lead is assigned exactly once when it is back, and clients see only
UNAVAILABLE / 503 (which they retry), never INTERNAL or 500.

Two throwaway clusters, so each side's outage is certain to be met: first conversion's database
stops while acquisition keeps capturing (conversion's consumer meets the outage on every event),
then the database of identity and acquisition stops under the clients' feet.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import nats
import pytest
from pg_cluster import ThrowawayCluster, throwaway_cluster

import closedloop_acquisition.main
import closedloop_conversion.main
import closedloop_identity.main
from closedloop.acquisition.v1 import acquisition_pb2 as apb
from closedloop.acquisition.v1 import acquisition_pb2_grpc
from closedloop.conversion.v1 import conversion_pb2 as cpb
from closedloop.conversion.v1 import conversion_pb2_grpc
from closedloop.events.v1 import conversion_events_pb2 as cev
from loopkit.consumer import EventConsumer
from loopkit.deadletters import list_dead_letters
from loopkit.events import decode_envelope, unpack
from loopkit_dev.natsserver import NatsServer
from loopkit_dev.testing import eventually, read_events, running_service

TENANT = "t-pg-stream"
RETRIED = {grpc.StatusCode.UNAVAILABLE}


@pytest.fixture
def clusters(tmp_path: Path) -> Iterator[tuple[ThrowawayCluster, ThrowawayCluster]]:
    with (
        throwaway_cluster(f"{tmp_path.name}-front") as front,
        throwaway_cluster(f"{tmp_path.name}-back") as back,
    ):
        yield front, back


@dataclass
class Stream:
    """Clients submitting leads without pause, retrying what they are told to retry."""

    stub: acquisition_pb2_grpc.AcquisitionServiceStub
    http_url: str
    page_id: str
    lead_ids: set[str] = field(default_factory=set)
    retried: Counter[str] = field(default_factory=Counter)  # per client
    refused: list[str] = field(default_factory=list)  # anything not retryable: a failure
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    phones: Iterator[int] = field(default_factory=lambda: itertools.count(13900000000))

    def values(self) -> dict[str, str]:
        return {"name": "Han Meimei", "phone": str(next(self.phones)), "agree": "true"}

    async def grpc_client(self, name: str) -> None:
        while not self.stop.is_set():
            request = apb.CaptureLeadRequest(
                tenant_id=TENANT, page_id=self.page_id, values=self.values()
            )
            while True:
                try:
                    answer = await self.stub.CaptureLead(request, timeout=30)
                except grpc.aio.AioRpcError as exc:
                    if exc.code() not in RETRIED:
                        self.refused.append(f"{name}: {exc.code().name} {exc.details()}")
                        return
                    self.retried[name] += 1
                    await asyncio.sleep(0.2)
                    continue
                self.lead_ids.add(answer.lead.lead_id)
                break

    async def form_client(self, name: str) -> None:
        async with httpx.AsyncClient(base_url=self.http_url, timeout=30) as http:
            while not self.stop.is_set():
                body = {"values": self.values()}
                while True:
                    answer = await http.post(f"/v1/forms/{self.page_id}/submissions", json=body)
                    if answer.status_code == 503 and answer.headers.get("retry-after"):
                        self.retried[name] += 1
                        await asyncio.sleep(0.2)
                        continue
                    if answer.status_code not in (200, 201):
                        self.refused.append(f"{name}: HTTP {answer.status_code} {answer.text}")
                        return
                    self.lead_ids.add(answer.json()["lead_id"])
                    break


@pytest.mark.timeout(400)  # two outages of tens of seconds each, on a busy machine
async def test_leads_flow_through_postgres_outages_without_dead_letters(
    clusters: tuple[ThrowawayCluster, ThrowawayCluster], nats_server: NatsServer, tmp_path: Path
) -> None:
    front, back = clusters
    async with (
        running_service(
            closedloop_identity.main.DEFINITION,
            database_url=front.database("identity"),
            nats_url=nats_server.url,
            state_dir=tmp_path,
        ) as identity,
        running_service(
            closedloop_acquisition.main.DEFINITION,
            database_url=front.database("acquisition"),
            nats_url=nats_server.url,
            state_dir=tmp_path,
            identity_url=identity.grpc_target,
        ) as acquisition,
        running_service(
            closedloop_conversion.main.DEFINITION,
            database_url=back.database("conversion"),
            nats_url=nats_server.url,
            state_dir=tmp_path,
            identity_url=identity.grpc_target,
        ) as conversion,
    ):
        sales = conversion_pb2_grpc.ConversionServiceStub(conversion.channel)
        for user in ("rep-a", "rep-b"):
            await sales.CreateRep(
                cpb.CreateRepRequest(tenant_id=TENANT, wecom_user_id=user, capacity=10_000)
            )
        stub = acquisition_pb2_grpc.AcquisitionServiceStub(acquisition.channel)
        campaign = (
            await stub.CreateCampaign(apb.CreateCampaignRequest(tenant_id=TENANT, name="PG"))
        ).campaign
        page = (
            await stub.CreateLandingPage(
                apb.CreateLandingPageRequest(
                    tenant_id=TENANT,
                    campaign_id=campaign.campaign_id,
                    title="Trial",
                    fields=[
                        apb.FormField(name="name", type=apb.FIELD_TYPE_NAME, required=True),
                        apb.FormField(name="phone", type=apb.FIELD_TYPE_PHONE, required=True),
                        apb.FormField(
                            name="agree",
                            type=apb.FIELD_TYPE_CONSENT,
                            required=True,
                            consent_wording="I agree to be called.",
                        ),
                    ],
                )
            )
        ).page
        stream = Stream(stub, acquisition.http_url, page.page_id)
        clients = [asyncio.create_task(stream.grpc_client(f"grpc-{n}")) for n in range(3)]
        clients.append(asyncio.create_task(stream.form_client("form")))
        leads_consumer = next(
            c for c in conversion.runtime.consumers if c.durable == "conversion-leads"
        )
        try:
            await eventually(lambda: _at_least(stream, 10), timeout_s=60)

            # 1. Conversion's database goes away; leads keep coming from acquisition.
            back.stop("fast")
            captured_before = len(stream.lead_ids)
            await eventually(lambda: _backed_off_fully(leads_consumer), timeout_s=120)
            await eventually(lambda: _at_least(stream, captured_before + 20), timeout_s=60)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await sales.ListReps(cpb.ListRepsRequest(tenant_id=TENANT))
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value.details()
            back.start()

            # 2. The database of identity and acquisition goes away under the clients.
            front.stop("fast")
            await eventually(lambda: _all_retrying(stream, len(clients)), timeout_s=60)
            front.start()
            captured_before = len(stream.lead_ids)
            await eventually(lambda: _at_least(stream, captured_before + 10), timeout_s=60)
        finally:
            stream.stop.set()
            await asyncio.gather(*clients)

        assert stream.refused == []
        leads = stream.lead_ids
        nc = await nats.connect(nats_server.url)
        try:

            async def assigned() -> Counter[str]:
                found = await read_events(nc, "CONVERSION", tenant_id=TENANT)
                return Counter(
                    unpack(e, cev.LeadAssigned).lead_id for e in found if e.type == "lead.assigned"
                )

            await eventually(lambda: _covers(assigned, leads), timeout_s=120)
            counts = await assigned()
            assert set(counts) == leads
            assert set(counts.values()) == {1}, "a lead was assigned more than once"
            letters = await list_dead_letters(nc.jetstream())
            ours = [d for d in letters if decode_envelope(d.data).tenant_id == TENANT]
            assert ours == []
        finally:
            await nc.close()


async def _at_least(stream: Stream, n: int) -> bool:
    return len(stream.lead_ids) >= n or bool(stream.refused)


async def _backed_off_fully(consumer: EventConsumer) -> bool:
    # At its cap only after more consecutive failed attempts than max_deliver allows.
    return consumer.backoff_s >= 10.0


async def _all_retrying(stream: Stream, clients: int) -> bool:
    return len(stream.retried) >= clients or bool(stream.refused)


async def _covers(fetch, leads: set[str]) -> bool:  # type: ignore[no-untyped-def]
    with contextlib.suppress(Exception):
        return set(await fetch()) >= leads
    return False
