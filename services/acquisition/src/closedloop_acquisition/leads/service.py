"""Use cases on leads. Callers own the unit of work; nothing here commits.

Identity is called before the unit of work (`resolve_lead`), so no database transaction waits on
the network: a caller prepares, resolves, then writes rows and events in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop.events.v1 import acquisition_events_pb2 as ev
from closedloop_acquisition import metrics
from closedloop_acquisition.catalog.service import CatalogService, out_of_schedule
from closedloop_acquisition.catalog.specs import text
from closedloop_acquisition.catalog.views import LandingPageView
from closedloop_acquisition.customers.directory import Customers
from closedloop_acquisition.inputs import check_identities, check_parameters, identity_pb
from closedloop_acquisition.leads import repository as repo
from closedloop_acquisition.leads.attribution import Attribution, attribute
from closedloop_acquisition.leads.forms import ValidForm, validate
from closedloop_acquisition.leads.views import CapturedLead, LeadView
from closedloop_acquisition.models import LeadRequestRow, LeadRow
from closedloop_acquisition.touches import repository as touches
from loopkit.customer_rows import set_aside
from loopkit.customers import IdentityValue, ResolvedCustomer
from loopkit.errors import FailedPrecondition, InvalidArgument, NotFound
from loopkit.events import Outbox
from loopkit.uow import on_commit
from loopkit.views import view_of


@dataclass(frozen=True)
class LeadInput:
    page_id: str
    values: dict[str, str]
    identities: tuple[IdentityValue, ...] = ()
    channel_id: str = ""
    referral_code: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    region: str = ""
    # WeChat ids a browser merely claims (a public form's body, a link): unverified hints that
    # never decide whose record the lead joins. `identities` are what a caller vouches for.
    claims: tuple[IdentityValue, ...] = ()
    # The client's idempotency key: a retry with the same key gets the first answer, no effects.
    request_id: str = ""


@dataclass(frozen=True)
class PreparedLead:
    """A submission checked against its page, ready to resolve and write."""

    request: LeadInput
    page: LandingPageView
    form: ValidForm

    @property
    def identities(self) -> tuple[IdentityValue, ...]:
        """Who the person is: the form's phone/e-mail and what the caller vouches for."""
        return self.form.identities + self.request.identities

    @property
    def claims(self) -> tuple[IdentityValue, ...]:
        return tuple(replace(i, verified=False) for i in self.request.claims)


class LeadService:
    def __init__(self, outbox: Outbox, customers: Customers, catalog: CatalogService):
        self._outbox = outbox
        self._customers = customers
        self._catalog = catalog

    async def prepare_lead(
        self, session: AsyncSession, tenant_id: str, request: LeadInput, now: datetime
    ) -> PreparedLead:
        """Checks the submission against its page (nothing written)."""
        page = await self._catalog.get_landing_page(session, tenant_id, request.page_id)
        channel_id = request.channel_id or page.channel_id
        if channel_id:
            channel = await self._catalog.channel_terms(session, tenant_id, channel_id)
            if out_of_schedule(channel, now):
                raise FailedPrecondition(
                    "this campaign has ended: the channel is outside its schedule",
                    field="channel_id",
                )
        check_identities(request.identities)
        check_identities(request.claims, "claims")
        check_parameters(request.parameters)
        text(request.referral_code, "referral_code", max_length=64)
        text(request.region, "region", max_length=100)
        form = validate(page.fields, request.values)
        prepared = PreparedLead(request=request, page=page, form=form)
        if not prepared.identities:
            # A claimed openid alone would let anyone file a lead under a stranger's record.
            raise InvalidArgument(
                "a lead needs a phone, an e-mail or a WeChat sign-in", field="values"
            )
        return prepared

    async def first_answer(
        self, session: AsyncSession, tenant_id: str, request: LeadInput
    ) -> CapturedLead | None:
        """What the first call with this request's idempotency key answered, if there was one."""
        if not request.request_id:
            return None
        text(request.request_id, "request_id", max_length=128)
        first = await repo.request(session, tenant_id, request.request_id)
        if first is None:
            return None
        if first.page_id != request.page_id:
            raise InvalidArgument(
                "this request_id was used for a submission to another page", field="request_id"
            )
        lead = await repo.lead(session, tenant_id, first.lead_id)
        if lead is None:
            raise NotFound(f"the lead of this request_id is gone: {first.lead_id}", field="lead_id")
        return CapturedLead(view_of(LeadView, lead), repeat=first.repeat)

    async def resolve_lead(self, tenant_id: str, prepared: PreparedLead) -> ResolvedCustomer:
        """The person is who the trusted identities say. Claims only add to that person: they
        are resolved afterwards, and dropped when identity will not join them to that person
        (they belong to someone else), so a claim never picks whose record the lead joins."""
        fields = prepared.form.identity_fields
        resolve = self._customers.resolve
        customer = await resolve(tenant_id, prepared.identities, fields=fields)
        assert customer is not None  # prepare_lead demands an identity
        if not prepared.claims:
            return customer
        try:
            joined = await resolve(tenant_id, prepared.identities + prepared.claims, fields=fields)
        except FailedPrecondition:
            return customer
        assert joined is not None
        return joined

    async def capture_lead(
        self,
        session: AsyncSession,
        tenant_id: str,
        prepared: PreparedLead,
        customer: ResolvedCustomer,
        now: datetime,
        *,
        fresh: bool = False,
    ) -> CapturedLead:
        """`fresh`: identity created the customer for this very submission, so no lead or touch
        of theirs can exist yet and neither is read (two round trips fewer). A concurrent
        submission for the same person that wrote a lead first makes the insert collide on the
        (tenant, customer, campaign) key; the caller's retry then passes `fresh=False`."""
        request = prepared.request
        # Checked again inside the unit of work: a concurrent call with the same key may have
        # committed since the caller's first look (then our key row collides and this retries).
        first = await self.first_answer(session, tenant_id, request)
        if first is not None:
            return first
        lead, repeat = await self._capture(session, tenant_id, prepared, customer, now, fresh=fresh)
        if request.request_id:
            await repo.add(
                session,
                LeadRequestRow(
                    tenant_id=tenant_id,
                    request_id=request.request_id,
                    page_id=request.page_id,
                    lead_id=lead.id,
                    repeat=repeat,
                    created_at=lead.updated_at,
                ),
            )
        on_commit(session, lambda: metrics.lead(repeat))
        return CapturedLead(view_of(LeadView, lead), repeat=repeat)

    async def _capture(
        self,
        session: AsyncSession,
        tenant_id: str,
        prepared: PreparedLead,
        customer: ResolvedCustomer,
        now: datetime,
        *,
        fresh: bool = False,
    ) -> tuple[LeadRow, bool]:
        request, page, form = prepared.request, prepared.page, prepared.form
        existing = (
            None
            if fresh
            else await repo.lead_of(session, tenant_id, customer.customer_id, page.campaign_id)
        )
        if existing is not None:
            existing.values = {**existing.values, **form.values}
            existing.submissions += 1
            existing.updated_at = now
            existing.forgotten = False
            if form.consent_granted:
                existing.consent_granted = True
                existing.consent_wording = form.consent_wording
            await session.flush()
            await self._outbox.emit(
                session,
                "lead.resubmitted",
                tenant_id=tenant_id,
                customer_id=customer.customer_id,
                payload=ev.LeadResubmitted(
                    lead_id=existing.id,
                    campaign_id=existing.campaign_id,
                    submissions=existing.submissions,
                ),
            )
            return existing, True

        # The touches of the person, read through their owner's repository.
        their_touches = (
            [] if fresh else await touches.touches_of(session, tenant_id, customer.customer_id)
        )
        code_referrer = ""
        if request.referral_code:
            code_referrer = await touches.referrer_of_code(
                session, tenant_id, request.referral_code
            )
        credit = attribute(
            their_touches,
            campaign_id=page.campaign_id,
            referral_code=request.referral_code,
            code_referrer=code_referrer,
            parameters=request.parameters,
        )
        if credit.referrer_customer_id:
            # Read again under a lock of the touch it came from: a merge or forget of the
            # referrer in flight either sees this lead or has its answer read here.
            from_touch = any(
                t.id == credit.last_touch_id and t.referrer_customer_id for t in their_touches
            )
            referrer = await touches.held_referrer(
                session,
                tenant_id,
                touch_id=credit.last_touch_id if from_touch else "",
                code=request.referral_code,
            )
            credit = Attribution(**{**credit.as_json(), "referrer_customer_id": referrer})
        channel_id = _credited_channel(request, page, credit)
        channel = (
            await self._catalog.channel_terms(session, tenant_id, channel_id)
            if channel_id
            else None
        )
        if channel is not None and channel.id != credit.last_channel_id:
            credit = Attribution(**{**credit.as_json(), "channel_kind": channel.kind})
        lead_id = str(ULID())
        values: dict[str, Any] = dict(
            id=lead_id,
            tenant_id=tenant_id,
            customer_id=customer.customer_id,
            campaign_id=page.campaign_id,
            channel_id=channel_id or None,
            page_id=page.id,
            values=form.values,
            consent_granted=form.consent_granted,
            consent_wording=form.consent_wording,
            attribution=credit.as_json(),
            submissions=1,
            forgotten=False,
            created_at=now,
            updated_at=now,
        )
        identities = list(dict.fromkeys(customer.identities or prepared.identities))
        event = self._outbox.envelope(
            "lead.captured",
            tenant_id=tenant_id,
            customer_id=customer.customer_id,
            payload=ev.LeadCaptured(
                lead_id=lead_id,
                campaign_id=page.campaign_id,
                channel_id=channel_id,
                landing_page_id=page.id,
                attribution=attribution_pb(credit),
                owner_team=channel.owner_team if channel else "",
                tags=list(channel.tags) if channel else [],
                region=request.region or (channel.region if channel else ""),
                consent_granted=form.consent_granted,
                consent_wording=form.consent_wording,
                identities=[identity_pb(i) for i in identities],
                daily_cap_per_rep=channel.daily_cap_per_rep if channel else 0,
            ),
        )
        return await repo.add_with_event(session, self._outbox, values, event), False

    async def get_lead(self, session: AsyncSession, tenant_id: str, lead_id: str) -> LeadView:
        row = await repo.lead(session, tenant_id, lead_id)
        if row is None:
            raise NotFound(f"no lead {lead_id!r}", field="lead_id")
        return view_of(LeadView, row)

    async def credit_late_visit(
        self,
        session: AsyncSession,
        tenant_id: str,
        customer_id: str,
        referral_code: str,
        referrer_customer_id: str,
    ) -> int:
        """A share visit that arrived after the visitor's lead (the form was faster than the
        event): the lead already carries the code, so it now gets the referrer the code names.
        Leads with a referrer keep theirs (the first valid referrer wins). Returns how many."""
        if not (customer_id and referral_code and referrer_customer_id):
            return 0
        if customer_id == referrer_customer_id:
            return 0  # a self-referral credits nobody
        credited = 0
        for lead in await repo.leads_of_customers(session, tenant_id, [customer_id]):
            credit = dict(lead.attribution or {})
            if credit.get("referral_code") == referral_code and not credit.get(
                "referrer_customer_id"
            ):
                lead.attribution = {**credit, "referrer_customer_id": referrer_customer_id}
                credited += 1
        await session.flush()
        return credited

    async def customer_merged(  # noqa: PLR0917 - the event's fields and its time
        self,
        session: AsyncSession,
        tenant_id: str,
        survivor_id: str,
        merged_id: str,
        now: datetime,
        merge_id: str = "",
    ) -> None:
        """Move the merged customer's leads to the survivor; two leads in one campaign fold (the
        merged one's lead is set aside for an unmerge). Leads the merged customer referred name
        the survivor as their referrer."""
        leads = await repo.leads_of_customers(session, tenant_id, [survivor_id, merged_id])
        kept = {lead.campaign_id: lead for lead in leads if lead.customer_id == survivor_id}
        for lead in leads:
            if lead.customer_id != merged_id or lead.campaign_id not in kept:
                continue
            survivor = kept[lead.campaign_id]
            await set_aside(
                session,
                LeadRow,
                "customer_id",
                [lead],
                tenant_id=tenant_id,
                merge_id=merge_id,
                from_id=merged_id,
                to_id=survivor_id,
            )
            older, newer = sorted((survivor, lead), key=lambda row: row.created_at)
            survivor.values = {**older.values, **newer.values}
            survivor.submissions += lead.submissions
            survivor.created_at = older.created_at
            survivor.attribution = older.attribution
            survivor.channel_id = older.channel_id
            survivor.consent_granted = survivor.consent_granted or lead.consent_granted
            survivor.consent_wording = survivor.consent_wording or lead.consent_wording
            await repo.fold(session, tenant_id, lead.id, survivor.id, now)
        await session.flush()
        await repo.repoint(session, tenant_id, merged_id, survivor_id, merge_id)
        await repo.repoint_referrer(session, tenant_id, merged_id, survivor_id, merge_id)

    async def customer_unmerged(
        self,
        session: AsyncSession,
        tenant_id: str,
        survivor_id: str,
        restored: list[dict[str, Any]],
    ) -> None:
        """Leads a merge folded into the survivor's are leads again (`restored`: as the unmerge
        inserted them back): their submissions no longer count on the survivor's lead. The
        survivor's lead keeps the values and the consent it took from them."""
        for row in restored:
            await repo.unfold(session, str(row["id"]))
            mine = await repo.lead_of(session, tenant_id, survivor_id, str(row["campaign_id"]))
            if mine is not None:
                mine.submissions = max(mine.submissions - int(row["submissions"]), 1)
        await session.flush()


def _credited_channel(request: LeadInput, page: LandingPageView, credit: Attribution) -> str:
    """The channel named by the submission, else the last touch in the page's campaign,
    else the page's own channel, else the last touch anywhere."""
    if request.channel_id:
        return request.channel_id
    if credit.last_channel_id and credit.last_campaign_id == page.campaign_id:
        return credit.last_channel_id
    return page.channel_id or credit.last_channel_id


def attribution_pb(credit: Attribution) -> ev.Attribution:
    return ev.Attribution(
        first_touch_id=credit.first_touch_id,
        first_channel_id=credit.first_channel_id,
        first_campaign_id=credit.first_campaign_id,
        last_touch_id=credit.last_touch_id,
        last_channel_id=credit.last_channel_id,
        last_campaign_id=credit.last_campaign_id,
        channel_kind=credit.channel_kind,
        referrer_customer_id=credit.referrer_customer_id,
        referral_code=credit.referral_code,
        parameters=credit.parameters,
    )
