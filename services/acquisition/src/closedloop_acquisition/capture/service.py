"""Use cases on touches and leads. Callers own the unit of work; nothing here commits.

Identity is called before the unit of work (`resolve`), so no database transaction waits on the
network: a caller validates, resolves, then writes rows and events in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop.common.v1 import common_pb2
from closedloop.events.v1 import acquisition_events_pb2 as ev
from closedloop_acquisition.capture import repository as repo
from closedloop_acquisition.capture.attribution import Attribution, attribute
from closedloop_acquisition.capture.forms import ValidForm, validate
from closedloop_acquisition.catalog.costs import cost_in_range, stopped_at
from closedloop_acquisition.catalog.service import CatalogService, closed, out_of_schedule
from closedloop_acquisition.catalog.specs import text
from closedloop_acquisition.models import (
    ChannelRow,
    LandingPageRow,
    LeadAliasRow,
    LeadRequestRow,
    LeadRow,
    TouchRow,
    WechatInboxRow,
)
from loopkit.customer_rows import repoint_customer
from loopkit.customers import KINDS, CustomerDirectory, IdentityValue, ResolvedCustomer
from loopkit.errors import FailedPrecondition, InvalidArgument, NotFound
from loopkit.events import Outbox

TOUCH_KINDS = ("exposure", "click", "scan", "subscribe", "friend_add", "visit", "unsubscribe")
MAX_IDENTITIES = 10
MAX_PARAMETERS = 20


@dataclass(frozen=True)
class TouchInput:
    kind: str
    channel_id: str = ""
    identities: tuple[IdentityValue, ...] = ()
    referral_code: str = ""
    referrer_customer_id: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    occurred_at: datetime | None = None


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
    page: LandingPageRow
    form: ValidForm

    @property
    def identities(self) -> tuple[IdentityValue, ...]:
        """Who the person is: the form's phone/e-mail and what the caller vouches for."""
        return self.form.identities + self.request.identities

    @property
    def claims(self) -> tuple[IdentityValue, ...]:
        return tuple(replace(i, verified=False) for i in self.request.claims)


@dataclass(frozen=True)
class CapturedLead:
    lead: LeadRow
    repeat: bool


@dataclass(frozen=True)
class Stats:
    touches: dict[str, int]
    leads: int
    repeat_submissions: int
    unique_customers: int
    cost_currency: str
    cost_minor: int
    # {YYYY-MM-DD: {touch kind or "lead": n}} when asked for by day.
    days: dict[str, dict[str, int]] = field(default_factory=dict)


def check_identities(identities: Sequence[IdentityValue], where: str = "identities") -> None:
    if len(identities) > MAX_IDENTITIES:
        raise InvalidArgument(f"at most {MAX_IDENTITIES} identities", field=where)
    for n, identity in enumerate(identities):
        if identity.kind not in KINDS:
            raise InvalidArgument(f"unknown identity kind {identity.kind!r}", field=f"{where}[{n}]")
        text(identity.value, f"{where}[{n}].value", required=True, max_length=256)
        text(identity.scope, f"{where}[{n}].scope", max_length=256)


def check_parameters(parameters: Mapping[str, str], where: str = "parameters") -> None:
    if len(parameters) > MAX_PARAMETERS:
        raise InvalidArgument(f"at most {MAX_PARAMETERS} parameters", field=where)
    for key, value in parameters.items():
        text(key, where, required=True, max_length=64)
        text(value, f"{where}.{key}", max_length=500)


def _identity_pb(identity: IdentityValue) -> common_pb2.Identity:
    return common_pb2.Identity(
        kind=f"IDENTITY_KIND_{identity.kind.upper()}",
        scope=identity.scope,
        value=identity.value,
        verified=identity.verified,
    )


def _identity_json(identity: IdentityValue) -> dict[str, str | bool]:
    return {
        "kind": identity.kind,
        "scope": identity.scope,
        "value": identity.value,
        "verified": identity.verified,
    }


class CaptureService:
    def __init__(self, outbox: Outbox, directory: CustomerDirectory, catalog: CatalogService):
        self._outbox = outbox
        self._directory = directory
        self._catalog = catalog

    # --- identity, outside any transaction ------------------------------------------------

    async def resolve(
        self,
        tenant_id: str,
        identities: Sequence[IdentityValue],
        *,
        fields: Sequence[str] = (),
    ) -> ResolvedCustomer | None:
        """The customer of these identities (None when there are none: an anonymous touch).

        An identity identity refuses (an invalid phone) comes back naming the form field in
        `fields` at the same position, or `identities[n]` for the others.
        """
        if not identities:
            return None
        try:
            return await self._directory.resolve(tenant_id, identities, actor="acquisition")
        except InvalidArgument as exc:
            raise self._name_field(exc, fields) from None

    @staticmethod
    def _name_field(exc: InvalidArgument, fields: Sequence[str]) -> InvalidArgument:
        where = exc.field or ""
        if where.startswith("identities["):
            index = int(where[len("identities[") : where.index("]")])
            if index < len(fields):
                return InvalidArgument(exc.reason, field=f"values.{fields[index]}")
            return InvalidArgument(exc.reason, field=f"identities[{index - len(fields)}]")
        return exc

    # --- touches --------------------------------------------------------------------------

    def check_touch(self, request: TouchInput) -> None:
        if request.kind not in TOUCH_KINDS:
            raise InvalidArgument(f"must be one of {', '.join(TOUCH_KINDS)}", field="kind")
        check_identities(request.identities)
        check_parameters(request.parameters)
        text(request.referral_code, "referral_code", max_length=64)
        text(request.referrer_customer_id, "referrer_customer_id", max_length=26)

    async def record_touch(
        self,
        session: AsyncSession,
        tenant_id: str,
        request: TouchInput,
        customer: ResolvedCustomer | None,
    ) -> TouchRow:
        """A touch on the request's channel (NotFound if unknown) or on none (organic)."""
        self.check_touch(request)
        channel = None
        if request.channel_id:
            channel = await self._catalog.get_channel(session, tenant_id, request.channel_id)
        return await self.add_touch(
            session,
            tenant_id,
            channel,
            request.kind,
            identities=request.identities,
            customer_id=customer.customer_id if customer else "",
            referral_code=request.referral_code,
            referrer_customer_id=request.referrer_customer_id,
            parameters=request.parameters,
            occurred_at=request.occurred_at,
        )

    async def add_touch(
        self,
        session: AsyncSession,
        tenant_id: str,
        channel: ChannelRow | None,
        kind: str,
        *,
        identities: Sequence[IdentityValue],
        customer_id: str,
        referral_code: str = "",
        referrer_customer_id: str = "",
        parameters: Mapping[str, str] | None = None,
        occurred_at: datetime | None = None,
    ) -> TouchRow:
        at = occurred_at or datetime.now(UTC)
        # Expired codes and scans outside the schedule are kept for the stats, credited nothing.
        expired = channel is not None and closed(channel, at)
        params = {**(channel.parameters if channel else {}), **(parameters or {})}
        row = TouchRow(
            id=str(ULID()),
            tenant_id=tenant_id,
            channel_id=channel.id if channel else None,
            campaign_id=channel.campaign_id if channel else None,
            channel_kind=channel.kind if channel else "",
            kind=kind,
            customer_id=customer_id or None,
            expired=expired,
            identities=[_identity_json(i) for i in identities],
            referrer_customer_id=referrer_customer_id or None,
            referral_code=referral_code or None,
            parameters=params,
            occurred_at=at,
        )
        session.add(row)
        await session.flush()
        await self._outbox.emit(
            session,
            "touch.recorded",
            tenant_id=tenant_id,
            customer_id=customer_id,
            payload=ev.TouchRecorded(
                touch_id=row.id,
                kind=f"TOUCH_KIND_{kind.upper()}",
                channel_id=row.channel_id or "",
                campaign_id=row.campaign_id or "",
                channel_kind=row.channel_kind,
                identities=[_identity_pb(i) for i in identities],
                referrer_customer_id=referrer_customer_id,
                referral_code=referral_code,
                parameters=params,
                expired=expired,
            ),
        )
        return row

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

    # --- leads ----------------------------------------------------------------------------

    async def prepare_lead(
        self, session: AsyncSession, tenant_id: str, request: LeadInput
    ) -> PreparedLead:
        """Checks the submission against its page (nothing written)."""
        page = await self._catalog.get_landing_page(session, tenant_id, request.page_id)
        channel_id = request.channel_id or page.channel_id
        if channel_id:
            channel = await self._catalog.get_channel(session, tenant_id, channel_id)
            if out_of_schedule(channel, datetime.now(UTC)):
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
        first = await session.get(LeadRequestRow, (tenant_id, request.request_id))
        if first is None:
            return None
        if first.page_id != request.page_id:
            raise InvalidArgument(
                "this request_id was used for a submission to another page", field="request_id"
            )
        lead = await repo.lead(session, tenant_id, first.lead_id)
        if lead is None:
            raise NotFound(f"the lead of this request_id is gone: {first.lead_id}", field="lead_id")
        return CapturedLead(lead, repeat=first.repeat)

    async def resolve_lead(self, tenant_id: str, prepared: PreparedLead) -> ResolvedCustomer:
        """The person is who the trusted identities say. Claims only add to that person: they
        are resolved afterwards, and dropped when identity will not join them to that person
        (they belong to someone else), so a claim never picks whose record the lead joins."""
        fields = prepared.form.identity_fields
        customer = await self.resolve(tenant_id, prepared.identities, fields=fields)
        assert customer is not None  # prepare_lead demands an identity
        if not prepared.claims:
            return customer
        try:
            joined = await self.resolve(
                tenant_id, prepared.identities + prepared.claims, fields=fields
            )
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
    ) -> CapturedLead:
        request = prepared.request
        # Checked again inside the unit of work: a concurrent call with the same key may have
        # committed since the caller's first look (then our key row collides and this retries).
        first = await self.first_answer(session, tenant_id, request)
        if first is not None:
            return first
        captured = await self._capture(session, tenant_id, prepared, customer)
        if request.request_id:
            session.add(
                LeadRequestRow(
                    tenant_id=tenant_id,
                    request_id=request.request_id,
                    page_id=request.page_id,
                    lead_id=captured.lead.id,
                    repeat=captured.repeat,
                    created_at=captured.lead.updated_at,
                )
            )
            await session.flush()
        return captured

    async def _capture(
        self,
        session: AsyncSession,
        tenant_id: str,
        prepared: PreparedLead,
        customer: ResolvedCustomer,
    ) -> CapturedLead:
        request, page, form = prepared.request, prepared.page, prepared.form
        now = datetime.now(UTC)
        existing = await repo.lead_of(session, tenant_id, customer.customer_id, page.campaign_id)
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
            return CapturedLead(existing, repeat=True)

        touches = await repo.touches_of(session, tenant_id, customer.customer_id)
        code_referrer = ""
        if request.referral_code:
            code_referrer = await repo.referrer_of_code(session, tenant_id, request.referral_code)
        credit = attribute(
            touches,
            campaign_id=page.campaign_id,
            referral_code=request.referral_code,
            code_referrer=code_referrer,
            parameters=request.parameters,
        )
        channel_id = self._credited_channel(request, page, credit)
        channel = (
            await self._catalog.get_channel(session, tenant_id, channel_id) if channel_id else None
        )
        if channel is not None and channel.id != credit.last_channel_id:
            credit = Attribution(**{**credit.as_json(), "channel_kind": channel.kind})
        lead = LeadRow(
            id=str(ULID()),
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
        session.add(lead)
        await session.flush()
        identities = list(dict.fromkeys(customer.identities or prepared.identities))
        await self._outbox.emit(
            session,
            "lead.captured",
            tenant_id=tenant_id,
            customer_id=customer.customer_id,
            payload=ev.LeadCaptured(
                lead_id=lead.id,
                campaign_id=lead.campaign_id,
                channel_id=channel_id,
                landing_page_id=page.id,
                attribution=attribution_pb(credit),
                owner_team=channel.owner_team if channel else "",
                tags=list(channel.tags) if channel else [],
                region=request.region or (channel.region if channel else ""),
                consent_granted=form.consent_granted,
                consent_wording=form.consent_wording,
                identities=[_identity_pb(i) for i in identities],
                daily_cap_per_rep=channel.daily_cap_per_rep if channel else 0,
            ),
        )
        return CapturedLead(lead, repeat=False)

    @staticmethod
    def _credited_channel(request: LeadInput, page: LandingPageRow, credit: Attribution) -> str:
        """The channel named by the submission, else the last touch in the page's campaign,
        else the page's own channel, else the last touch anywhere."""
        if request.channel_id:
            return request.channel_id
        if credit.last_channel_id and credit.last_campaign_id == page.campaign_id:
            return credit.last_channel_id
        return page.channel_id or credit.last_channel_id

    async def get_lead(self, session: AsyncSession, tenant_id: str, lead_id: str) -> LeadRow:
        row = await repo.lead(session, tenant_id, lead_id)
        if row is None:
            raise NotFound(f"no lead {lead_id!r}", field="lead_id")
        return row

    # --- stats ----------------------------------------------------------------------------

    async def stats(
        self,
        session: AsyncSession,
        tenant_id: str,
        *,
        channel_id: str,
        campaign_id: str,
        since: datetime | None,
        until: datetime | None,
        by_day: bool = False,
    ) -> Stats:
        if bool(channel_id) == bool(campaign_id):
            raise InvalidArgument("name a channel_id or a campaign_id", field="channel_id")
        if since and until and until <= since:
            raise InvalidArgument("must be after from", field="to")
        if channel_id:
            channels = [await self._catalog.get_channel(session, tenant_id, channel_id)]
        else:
            await self._catalog.get_campaign(session, tenant_id, campaign_id)
            channels = await self._catalog.channels_of_campaign(session, tenant_id, campaign_id)
        ids = [c.id for c in channels]
        touches = await repo.touch_counts(session, tenant_id, ids, since, until)
        leads, repeats = await repo.lead_counts(session, tenant_id, ids, since, until)
        unique = await repo.unique_customers(session, tenant_id, ids, since, until)
        currencies = {c.cost_currency for c in channels if c.cost_minor}
        if len(currencies) > 1:
            raise InvalidArgument(
                "the channels' costs are in several currencies", field="campaign_id"
            )
        return Stats(
            touches=touches,
            leads=leads,
            repeat_submissions=repeats,
            unique_customers=unique,
            cost_currency=currencies.pop() if currencies else "CNY",
            cost_minor=sum(
                cost_in_range(
                    c.cost_minor,
                    c.created_at,
                    stopped_at(c.expires_at, c.deleted_at),
                    since,
                    until,
                    datetime.now(UTC),
                )
                for c in channels
            ),
            days=await repo.daily_counts(session, tenant_id, ids, since, until) if by_day else {},
        )

    # --- following identity ---------------------------------------------------------------

    async def customer_merged(
        self, session: AsyncSession, tenant_id: str, survivor_id: str, merged_id: str
    ) -> None:
        """Move the merged customer's rows to the survivor; two leads in one campaign fold."""
        leads = await repo.leads_of_customers(session, tenant_id, [survivor_id, merged_id])
        kept = {lead.campaign_id: lead for lead in leads if lead.customer_id == survivor_id}
        for lead in leads:
            if lead.customer_id != merged_id or lead.campaign_id not in kept:
                continue
            survivor = kept[lead.campaign_id]
            older, newer = sorted((survivor, lead), key=lambda row: row.created_at)
            survivor.values = {**older.values, **newer.values}
            survivor.submissions += lead.submissions
            survivor.created_at = older.created_at
            survivor.attribution = older.attribution
            survivor.channel_id = older.channel_id
            survivor.consent_granted = survivor.consent_granted or lead.consent_granted
            survivor.consent_wording = survivor.consent_wording or lead.consent_wording
            await session.execute(delete(LeadRow).where(LeadRow.id == lead.id))
            # Whoever kept the folded lead's id (conversion did) still finds the lead; and ids
            # that pointed at the folded one now point at the survivor.
            await session.execute(
                update(LeadAliasRow)
                .where(LeadAliasRow.survivor_lead_id == lead.id)
                .values(survivor_lead_id=survivor.id)
            )
            session.add(
                LeadAliasRow(
                    lead_id=lead.id,
                    tenant_id=tenant_id,
                    survivor_lead_id=survivor.id,
                    created_at=datetime.now(UTC),
                )
            )
        await session.flush()
        columns = [
            (TouchRow, "customer_id"),
            (TouchRow, "referrer_customer_id"),
            (LeadRow, "customer_id"),
        ]
        await repoint_customer(
            session, columns, tenant_id=tenant_id, from_id=merged_id, to_id=survivor_id
        )

    async def customer_forgotten(
        self, session: AsyncSession, tenant_id: str, customer_ids: Sequence[str]
    ) -> None:
        """Erase form values and WeChat ids of these customers; rows stay for the counts."""
        touches = await repo.touches_of_customers(session, tenant_id, customer_ids)
        openids = {
            str(i["value"])
            for t in touches
            for i in t.identities
            if i.get("kind") == "wechat_openid" and i.get("value")
        }
        await session.execute(
            update(TouchRow)
            .where(TouchRow.tenant_id == tenant_id, TouchRow.customer_id.in_(customer_ids))
            .values(identities=[], parameters={})
        )
        await session.execute(
            update(LeadRow)
            .where(LeadRow.tenant_id == tenant_id, LeadRow.customer_id.in_(customer_ids))
            .values(values={}, forgotten=True)
        )
        if openids:
            await session.execute(
                update(WechatInboxRow)
                .where(
                    WechatInboxRow.tenant_id == tenant_id,
                    WechatInboxRow.from_user.in_(sorted(openids)),
                )
                .values(from_user="", message={})
            )


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
