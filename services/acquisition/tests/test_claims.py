"""Nothing a browser merely claims is trusted: an openid or unionid in a form's body or a link is
an unverified hint that never joins two customers; a signed callback's openid is verified."""

from __future__ import annotations

from nats.aio.client import Client

from acquisition_helpers import Env, event_xml, form, openid, phone, safe_post
from closedloop.acquisition.v1 import acquisition_pb2 as pb
from closedloop.common.v1 import common_pb2 as c
from closedloop.identity.v1 import identity_pb2
from loopkit_dev.testing import eventually, read_events


def unionid(value: str, *, verified: bool = False) -> c.Identity:
    return c.Identity(kind=c.IDENTITY_KIND_WECHAT_UNIONID, value=value, verified=verified)


async def _customer(env: Env, customer_id: str) -> identity_pb2.Customer:
    answer = await env.identity_stub.GetCustomer(
        identity_pb2.GetCustomerRequest(tenant_id=env.tenant, customer_id=customer_id)
    )
    return answer.customer


async def _lead(env: Env, lead_id: str) -> pb.Lead:
    answer = await env.stub.GetLead(pb.GetLeadRequest(tenant_id=env.tenant, lead_id=lead_id))
    return answer.lead


async def test_a_form_claiming_another_customers_unionid_merges_nothing(
    env: Env, nats_client: Client
) -> None:
    # The victim: WeChat told us their openid and unionid (signed callback, then OAuth).
    victim = (
        await env.identity_stub.ResolveCustomer(
            identity_pb2.ResolveCustomerRequest(
                tenant_id=env.tenant,
                identities=[
                    c.Identity(
                        kind=c.IDENTITY_KIND_WECHAT_OPENID,
                        scope=env.app_id,
                        value="o-victim",
                        verified=True,
                    ),
                    unionid("u-victim", verified=True),
                ],
            )
        )
    ).customer
    campaign = await env.campaign()
    landing = await env.page(campaign.campaign_id)
    url = f"/v1/forms/{landing.page_id}/submissions"
    async with env.http() as http:
        # Someone already known to us by their phone...
        known = await http.post(url, json={"values": form(phone_number="13500135000")})
        assert known.status_code == 201, known.text
        attacker_id = (await _lead(env, known.json()["lead_id"])).customer_id
        # ...claims the victim's unionid on the public form.
        claimed = await http.post(
            url, json={"values": form(phone_number="13500135000"), "unionid": "u-victim"}
        )
        # And a newcomer does the same.
        stranger = await http.post(
            url, json={"values": form(phone_number="13400134000"), "unionid": "u-victim"}
        )
    assert claimed.status_code == 200, claimed.text  # the attacker's own lead, re-submitted
    assert claimed.json()["lead_id"] == known.json()["lead_id"]
    assert stranger.status_code == 201, stranger.text
    stranger_lead = await _lead(env, stranger.json()["lead_id"])
    assert stranger_lead.customer_id not in (victim.customer_id, attacker_id)

    # Nobody was merged: three live customers, and the victim holds only what WeChat told us.
    for customer_id in (victim.customer_id, attacker_id, stranger_lead.customer_id):
        customer = await _customer(env, customer_id)
        assert customer.customer_id == customer_id
        assert customer.status == identity_pb2.CUSTOMER_STATUS_ACTIVE
        assert not customer.merged_ids
    held = {(i.kind, i.value) for i in (await _customer(env, victim.customer_id)).identities}
    assert held == {
        (c.IDENTITY_KIND_WECHAT_OPENID, "o-victim"),
        (c.IDENTITY_KIND_WECHAT_UNIONID, "u-victim"),
    }
    found = await env.customer_of(unionid("u-victim"))
    assert found is not None and found.customer_id == victim.customer_id
    merges = [
        e
        for e in await read_events(nats_client, "IDENTITY", tenant_id=env.tenant)
        if e.type == "customer.merged"
    ]
    assert merges == []


async def test_a_signed_callbacks_openid_is_verified_and_a_claimed_one_is_not(env: Env) -> None:
    campaign = await env.campaign()
    await env.qr_channel(campaign.campaign_id, "claims-1")
    landing = await env.page(campaign.campaign_id)
    query, body = safe_post(event_xml("o-signed", "subscribe", key="qrscene_claims-1"), env.app_id)
    async with env.http() as http:
        assert (await http.post(env.callback(), params=query, content=body)).status_code == 200

        async def subscribed() -> identity_pb2.Customer | None:
            return await env.customer_of(openid("o-signed", env.app_id))

        await eventually(subscribed)
        submitted = await http.post(
            f"/v1/forms/{landing.page_id}/submissions",
            json={
                "values": form(phone_number="13300133000"),
                "openid": "o-typed-in",
                "app_id": env.app_id,
            },
        )
        assert submitted.status_code == 201, submitted.text
    signed = await env.customer_of(openid("o-signed", env.app_id))
    assert signed is not None
    assert [i.verified for i in signed.identities if i.value == "o-signed"] == [True]
    typed = await env.customer_of(phone("+8613300133000"))
    assert typed is not None
    assert [i.verified for i in typed.identities if i.value == "o-typed-in"] == [False]
