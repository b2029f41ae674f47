"""A new customer's data key comes with identity's answer: the lead's event is sealed with it."""

from __future__ import annotations

from collections.abc import Sequence

from nats.aio.client import Client

from acquisition_helpers import Env, form
from closedloop.events.v1 import acquisition_events_pb2 as ev
from closedloop.events.v1.envelope_pb2 import Envelope
from loopkit import pii
from loopkit.events import unpack
from loopkit_dev.testing import eventually, read_events


class _Asked:
    """The relay's own key source (identity's GetCustomerKeys), noting whom it was asked for."""

    def __init__(self, source: pii.KeySource) -> None:
        self.source = source
        self.customers: list[str] = []

    async def keys(self, tenant_id: str, customer_ids: Sequence[str]) -> dict[str, bytes | None]:
        self.customers.extend(customer_ids)
        return await self.source.keys(tenant_id, customer_ids)


async def test_a_new_customers_lead_is_sealed_without_asking_identity_for_the_key(
    env: Env, nats_client: Client
) -> None:
    """ResolveCustomer hands acquisition the data key of the customer it created, so the relay
    seals their lead.captured with it and makes no GetCustomerKeys call for them."""
    cache = env.acquisition.runtime.pii_cache
    assert cache is not None
    asked = _Asked(cache._source)
    cache._source = asked
    try:
        campaign = await env.campaign()
        page = await env.page(campaign.campaign_id)
        async with env.http() as http:
            answer = await http.post(
                f"/v1/forms/{page.page_id}/submissions",
                json={"values": form(phone_number="13700137000")},
            )
        assert answer.status_code == 201

        async def captured() -> list[Envelope]:
            return await read_events(
                nats_client,
                "ACQUISITION",
                "closedloop.acquisition.lead.captured",
                tenant_id=env.tenant,
            )

        await eventually(captured)
        [event] = await captured()
    finally:
        cache._source = asked.source
    lead = unpack(event, ev.LeadCaptured)  # type: ignore[arg-type]
    assert lead.identities and all(pii.is_sealed(i.value) for i in lead.identities)
    opened = unpack(await env.opened(event), ev.LeadCaptured)  # type: ignore[arg-type]
    assert [i.value for i in opened.identities] == ["+8613700137000"]
    assert event.customer_id not in asked.customers
