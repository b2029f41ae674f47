"""Protobuf <-> domain for the acquisition API."""

from __future__ import annotations

from collections.abc import Iterable

from closedloop.acquisition.v1 import acquisition_pb2 as pb
from closedloop.common.v1 import common_pb2
from closedloop.events.v1 import acquisition_events_pb2 as ev
from closedloop_acquisition.catalog.specs import (
    CampaignSpec,
    ChannelSpec,
    FormFieldSpec,
    LandingPageSpec,
    Schedule,
)
from closedloop_acquisition.catalog.views import CampaignView, ChannelView, LandingPageView
from closedloop_acquisition.fission.views import Progress
from closedloop_acquisition.leads.attribution import Attribution
from closedloop_acquisition.leads.service import attribution_pb
from closedloop_acquisition.leads.views import LeadView
from closedloop_acquisition.stats.service import Stats
from closedloop_acquisition.touches.service import TouchInput
from closedloop_acquisition.touches.views import TouchView
from loopkit.customers import IdentityValue
from loopkit.errors import InvalidArgument
from loopkit.identity_client import identity_from_pb
from loopkit.timestamps import from_ts as from_ts  # shared; re-exported
from loopkit.timestamps import ts as ts


def enum_name(value: int, names: Iterable[tuple[str, int]], prefix: str, field: str) -> str:
    for name, number in names:
        if number == value and number != 0:
            return name.removeprefix(prefix).lower()
    raise InvalidArgument(f"unknown or unspecified value {value}", field=field)


def channel_kind(value: int) -> str:
    return enum_name(value, pb.ChannelKind.items(), "CHANNEL_KIND_", "channel.kind")


def touch_kind(value: int) -> str:
    return enum_name(value, ev.TouchKind.items(), "TOUCH_KIND_", "kind")


def identities(
    values: Iterable[common_pb2.Identity], field: str = "identities"
) -> tuple[IdentityValue, ...]:
    out = []
    for n, value in enumerate(values):
        if value.kind == common_pb2.IDENTITY_KIND_UNSPECIFIED:
            raise InvalidArgument("identity kind is required", field=f"{field}[{n}].kind")
        out.append(identity_from_pb(value, field=f"{field}[{n}].kind"))
    return tuple(out)


def campaign_spec(request: pb.CreateCampaignRequest) -> CampaignSpec:
    return CampaignSpec(
        name=request.name,
        description=request.description,
        starts_at=from_ts(request.starts_at, request.HasField("starts_at")),
        ends_at=from_ts(request.ends_at, request.HasField("ends_at")),
        goal_leads=request.goal_leads,
        fission_goal=request.fission_goal,
        fission_reward=request.fission_reward,
    )


def campaign_to_pb(row: CampaignView) -> pb.Campaign:
    return pb.Campaign(
        campaign_id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        starts_at=ts(row.starts_at),
        ends_at=ts(row.ends_at),
        goal_leads=row.goal_leads,
        description=row.description,
        created_at=ts(row.created_at),
        fission_goal=row.fission_goal,
        fission_reward=row.fission_reward,
    )


def channel_spec(channel: pb.Channel) -> ChannelSpec:
    return ChannelSpec(
        campaign_id=channel.campaign_id,
        name=channel.name,
        kind=channel_kind(channel.kind),
        scene=channel.scene,
        expires_at=from_ts(channel.expires_at, channel.HasField("expires_at")),
        state=channel.state,
        app_id=channel.app_id,
        url=channel.url,
        parameters=dict(channel.parameters),
        owner_team=channel.owner_team,
        welcome_message=channel.welcome_message,
        expired_reply=channel.expired_reply,
        tags=tuple(channel.tags),
        schedule=Schedule(
            weekdays=tuple(channel.schedule.weekdays),
            start=channel.schedule.start,
            end=channel.schedule.end,
            time_zone=channel.schedule.time_zone,
        ),
        daily_cap_per_rep=channel.daily_cap_per_rep,
        cost_currency=channel.cost.currency or "CNY",
        cost_minor=channel.cost.amount_minor,
        region=channel.region,
        corp_id=channel.corp_id,
        user_ids=tuple(channel.user_ids),
        skip_verify=channel.skip_verify,
    )


def channel_to_pb(row: ChannelView) -> pb.Channel:
    schedule = row.schedule or {}
    return pb.Channel(
        channel_id=row.id,
        tenant_id=row.tenant_id,
        campaign_id=row.campaign_id,
        name=row.name,
        kind=f"CHANNEL_KIND_{row.kind.upper()}",
        scene=row.scene or "",
        expires_at=ts(row.expires_at),
        state=row.state or "",
        app_id=row.app_id,
        url=row.url,
        parameters=row.parameters,
        owner_team=row.owner_team,
        welcome_message=row.welcome_message,
        expired_reply=row.expired_reply,
        tags=row.tags,
        schedule=pb.Schedule(
            weekdays=schedule.get("weekdays", []),
            start=schedule.get("start", ""),
            end=schedule.get("end", ""),
            time_zone=schedule.get("time_zone", ""),
        ),
        daily_cap_per_rep=row.daily_cap_per_rep,
        cost=common_pb2.Money(currency=row.cost_currency, amount_minor=row.cost_minor),
        region=row.region,
        created_at=ts(row.created_at),
        corp_id=row.corp_id,
        user_ids=row.user_ids,
        skip_verify=row.skip_verify,
        code=pb.ChannelCode(
            ticket=row.code_ticket or "",
            url=row.code_url or "",
            image_url=row.code_image_url or "",
            config_id=row.code_config_id or "",
            missing_reason=row.code_note,
        ),
        deleted_at=ts(row.deleted_at),
    )


_FIELD_TYPES = {
    pb.FIELD_TYPE_TEXT: "text",
    pb.FIELD_TYPE_NAME: "name",
    pb.FIELD_TYPE_PHONE: "phone",
    pb.FIELD_TYPE_CONSENT: "consent",
    pb.FIELD_TYPE_EMAIL: "email",
}
_FIELD_TYPES_PB = {name: number for number, name in _FIELD_TYPES.items()}
_SIGN_INS = {
    pb.PAGE_SIGN_IN_UNSPECIFIED: "base",
    pb.PAGE_SIGN_IN_NONE: "none",
    pb.PAGE_SIGN_IN_BASE: "base",
    pb.PAGE_SIGN_IN_USERINFO: "userinfo",
}
_SIGN_INS_PB = {
    "none": pb.PAGE_SIGN_IN_NONE,
    "base": pb.PAGE_SIGN_IN_BASE,
    "userinfo": pb.PAGE_SIGN_IN_USERINFO,
}


def page_spec(request: pb.CreateLandingPageRequest) -> LandingPageSpec:
    fields = []
    for n, f in enumerate(request.fields):
        if f.type not in _FIELD_TYPES:
            raise InvalidArgument("field type is required", field=f"fields[{n}].type")
        fields.append(
            FormFieldSpec(
                name=f.name,
                type=_FIELD_TYPES[f.type],
                label=f.label,
                required=f.required,
                consent_wording=f.consent_wording,
                max_length=f.max_length,
            )
        )
    return LandingPageSpec(
        campaign_id=request.campaign_id,
        title=request.title,
        fields=tuple(fields),
        channel_id=request.channel_id,
        sign_in=_SIGN_INS.get(request.sign_in, "unknown"),
        app_id=request.app_id,
    )


def page_to_pb(row: LandingPageView) -> pb.LandingPage:
    return pb.LandingPage(
        page_id=row.id,
        tenant_id=row.tenant_id,
        campaign_id=row.campaign_id,
        channel_id=row.channel_id or "",
        title=row.title,
        fields=[
            pb.FormField(
                name=f["name"],
                type=_FIELD_TYPES_PB[f["type"]],
                label=f.get("label", ""),
                required=bool(f.get("required")),
                consent_wording=f.get("consent_wording", ""),
                max_length=int(f.get("max_length") or 0),
            )
            for f in row.fields
        ],
        created_at=ts(row.created_at),
        sign_in=_SIGN_INS_PB[row.sign_in],
        app_id=row.app_id,
    )


def touch_input(request: pb.RecordTouchRequest) -> TouchInput:
    return TouchInput(
        kind=touch_kind(request.kind),
        channel_id=request.channel_id,
        identities=identities(request.identities),
        referral_code=request.referral_code,
        referrer_customer_id=request.referrer_customer_id,
        parameters=dict(request.parameters),
        occurred_at=from_ts(request.occurred_at, request.HasField("occurred_at")),
    )


def touch_to_pb(row: TouchView) -> pb.Touch:
    return pb.Touch(
        touch_id=row.id,
        tenant_id=row.tenant_id,
        channel_id=row.channel_id or "",
        campaign_id=row.campaign_id or "",
        kind=f"TOUCH_KIND_{row.kind.upper()}",
        customer_id=row.customer_id or "",
        expired=row.expired,
        referrer_customer_id=row.referrer_customer_id or "",
        referral_code=row.referral_code or "",
        parameters=row.parameters,
        occurred_at=ts(row.occurred_at),
    )


def lead_to_pb(row: LeadView) -> pb.Lead:
    return pb.Lead(
        lead_id=row.id,
        tenant_id=row.tenant_id,
        customer_id=row.customer_id,
        campaign_id=row.campaign_id,
        channel_id=row.channel_id or "",
        page_id=row.page_id,
        values=row.values,
        consent_granted=row.consent_granted,
        consent_wording=row.consent_wording,
        attribution=attribution_pb(Attribution.from_json(row.attribution)),
        submissions=row.submissions,
        created_at=ts(row.created_at),
        updated_at=ts(row.updated_at),
    )


def _rate(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def stats_to_pb(stats: Stats) -> pb.ChannelStats:
    t = stats.touches
    per_lead = stats.cost_minor // stats.leads if stats.leads else 0
    return pb.ChannelStats(
        exposures=t.get("exposure", 0),
        clicks=t.get("click", 0),
        scans=t.get("scan", 0),
        subscribes=t.get("subscribe", 0),
        friend_adds=t.get("friend_add", 0),
        visits=t.get("visit", 0),
        unsubscribes=t.get("unsubscribe", 0),
        expired_touches=t.get("expired", 0),
        leads=stats.leads,
        repeat_submissions=stats.repeat_submissions,
        unique_customers=stats.unique_customers,
        cost=common_pb2.Money(currency=stats.cost_currency, amount_minor=stats.cost_minor),
        cost_per_lead=common_pb2.Money(currency=stats.cost_currency, amount_minor=per_lead),
        scan_to_subscribe_rate=_rate(t.get("subscribe", 0), t.get("scan", 0)),
        subscribe_to_lead_rate=_rate(stats.leads, t.get("subscribe", 0)),
        customer_to_lead_rate=_rate(stats.leads, stats.unique_customers),
    )


def participant_to_pb(progress: Progress) -> pb.FissionParticipant:
    row = progress.participant
    return pb.FissionParticipant(
        campaign_id=row.campaign_id,
        customer_id=row.customer_id,
        channel_id=row.channel_id,
        scene=progress.channel.scene or "",
        app_id=progress.channel.app_id,
        invited=row.invited,
        goal=progress.campaign.fission_goal,
        goal_reached=row.reached_at is not None,
        reached_at=ts(row.reached_at),
        reward=progress.campaign.fission_reward,
    )


def days_to_pb(stats: Stats) -> list[pb.DayStats]:
    return [
        pb.DayStats(
            day=day,
            exposures=n.get("exposure", 0),
            clicks=n.get("click", 0),
            scans=n.get("scan", 0),
            subscribes=n.get("subscribe", 0),
            friend_adds=n.get("friend_add", 0),
            visits=n.get("visit", 0),
            leads=n.get("lead", 0),
        )
        for day, n in stats.days.items()
    ]
