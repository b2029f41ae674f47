"""customer.merged re-points this service's rows, customer.unmerged gives back what came with the
merged customer; customer.forgotten erases personal data."""

from __future__ import annotations

from closedloop.common.v1 import common_pb2 as c
from closedloop.conversion.v1 import conversion_pb2 as pb
from closedloop.events.v1 import conversion_events_pb2 as ev
from closedloop.identity.v1 import identity_pb2 as ipb
from conversion_helpers import contact_change, lead_envelope, make_rep, post_callback, publish
from loopkit_dev.testing import eventually, read_events, replay_event


async def test_merge_repoints_and_forget_erases(stub, identity_stub, conversion, tenant):
    rep = await make_rep(stub, tenant, "keeper")
    # A customer known from the CRM before the WeCom friend-add: they survive the merge.
    other = await identity_stub.ResolveCustomer(
        ipb.ResolveCustomerRequest(
            tenant_id=tenant,
            identities=[c.Identity(kind=c.IDENTITY_KIND_EXTERNAL, value="crm-42")],
        )
    )
    await post_callback(
        conversion.http_url, contact_change("add_external_contact", "keeper", "wm-merge")
    )
    [own] = (await stub.ListOwnerships(pb.ListOwnershipsRequest(tenant_id=tenant))).ownerships
    await stub.LogFollowUp(
        pb.LogFollowUpRequest(
            tenant_id=tenant,
            customer_id=own.customer_id,
            rep_id=rep.rep_id,
            kind=ev.FOLLOW_UP_KIND_NOTE,
            summary="prefers evening calls",
        )
    )
    # An operator merges the WeCom customer into the older one: rows follow the survivor.
    merged = await identity_stub.MergeCustomers(
        ipb.MergeCustomersRequest(
            tenant_id=tenant,
            customer_ids=[other.customer.customer_id, own.customer_id],
            actor="ops",
            reason="same person",
        )
    )
    survivor_id = merged.survivor.customer_id
    assert survivor_id != own.customer_id

    async def repointed():
        listed = await stub.ListOwnerships(
            pb.ListOwnershipsRequest(tenant_id=tenant, customer_id=survivor_id)
        )
        return list(listed.ownerships)

    await eventually(repointed)
    report = await stub.GetRepReport(pb.GetRepReportRequest(tenant_id=tenant, rep_id=rep.rep_id))
    assert report.reps[0].customers_owned == 1

    await identity_stub.ForgetCustomer(
        ipb.ForgetCustomerRequest(tenant_id=tenant, customer_id=survivor_id, actor="dpo")
    )

    async def erased():
        listed = await stub.ListOwnerships(
            pb.ListOwnershipsRequest(tenant_id=tenant, customer_id=survivor_id, include_ended=True)
        )
        [row] = listed.ownerships
        return row if row.external_userid != "wm-merge" else None

    await eventually(erased)
    row = await erased()
    assert row is not None and row.status == pb.OWNERSHIP_STATUS_ENDED
    # The figures stay: the friendship still counts as made by the rep.
    report = await stub.GetRepReport(pb.GetRepReportRequest(tenant_id=tenant, rep_id=rep.rep_id))
    assert (report.reps[0].new_friends, report.reps[0].customers_owned) == (1, 0)


async def _customer(identity_stub, tenant: str, crm_id: str) -> str:
    answer = await identity_stub.ResolveCustomer(
        ipb.ResolveCustomerRequest(
            tenant_id=tenant, identities=[c.Identity(kind=c.IDENTITY_KIND_EXTERNAL, value=crm_id)]
        )
    )
    return str(answer.customer.customer_id)


async def test_unmerge_gives_back_what_came_with_the_merged_customer(
    stub, identity_stub, conversion, nats_client, tenant
):
    await make_rep(stub, tenant, "closer")
    a = await _customer(identity_stub, tenant, "crm-a")
    b = await _customer(identity_stub, tenant, "crm-b")

    async def leads_of(customer: str) -> set[str]:
        listed = await stub.ListLeads(pb.ListLeadsRequest(tenant_id=tenant, customer_id=customer))
        return {lead.lead_id for lead in listed.leads}

    async def holds(customer: str, lead_ids: set[str]):
        async def check() -> bool:
            return await leads_of(customer) == lead_ids

        await eventually(check)

    await publish(nats_client, lead_envelope(tenant, a, lead_id="lead-a"))
    await publish(nats_client, lead_envelope(tenant, b, lead_id="lead-b"))
    await holds(a, {"lead-a"})
    await holds(b, {"lead-b"})

    merged = await identity_stub.MergeCustomers(
        ipb.MergeCustomersRequest(tenant_id=tenant, customer_ids=[a, b], actor="ops", reason="x")
    )
    assert merged.survivor.customer_id == a
    await holds(a, {"lead-a", "lead-b"})
    assert await leads_of(b) == set()
    # The survivor gets a lead of its own after the merge: it stays with the survivor.
    await publish(nats_client, lead_envelope(tenant, a, lead_id="lead-a2", campaign_id="camp-2"))
    await holds(a, {"lead-a", "lead-b", "lead-a2"})

    await identity_stub.UnmergeCustomer(
        ipb.UnmergeCustomerRequest(tenant_id=tenant, customer_id=b, actor="ops", reason="not")
    )
    await holds(b, {"lead-b"})
    assert await leads_of(a) == {"lead-a", "lead-a2"}

    # The same customer.unmerged delivered again changes nothing.
    [unmerged] = [
        e
        for e in await read_events(nats_client, "IDENTITY", tenant_id=tenant)
        if e.type == "customer.unmerged"
    ]
    await replay_event(nats_client, unmerged, durable="conversion-identity")
    assert (await leads_of(a), await leads_of(b)) == ({"lead-a", "lead-a2"}, {"lead-b"})
