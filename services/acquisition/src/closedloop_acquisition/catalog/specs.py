"""What a caller asks to create, free of protobuf, and the rules a valid one follows."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from loopkit.errors import InvalidArgument
from loopkit.fission_reward import reward_problem

CHANNEL_KINDS = (
    "qr_permanent",
    "qr_temporary",
    "wecom_contact_way",
    "link",
    "ad",
    "referral",
    "offline",
)
QR_KINDS = ("qr_permanent", "qr_temporary")
FIELD_TYPES = ("text", "name", "phone", "consent", "email")
# Kinds whose code WeChat issues (through the gateway).
CODE_KINDS = (*QR_KINDS, "wecom_contact_way")
# Kinds that keep an expiry: a temporary QR code (required; WeChat's too) and a contact-me
# code (optional; when it passes, its code is removed at WeCom).
EXPIRING_KINDS = ("qr_temporary", "wecom_contact_way")
SIGN_INS = ("none", "base", "userinfo")
MAX_REPS = 100
MAX_FIELDS = 50
MAX_TAGS = 50
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_SCENE_RE = re.compile(r"^[A-Za-z0-9_\-.]{1,64}$")
# WeCom carries a contact-me code's state back in at most 30 characters.
_STATE_RE = re.compile(r"^[A-Za-z0-9_\-.]{1,30}$")
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


@dataclass(frozen=True)
class CampaignSpec:
    name: str
    description: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    goal_leads: int = 0
    fission_goal: int = 0
    fission_reward: str = ""

    def validate(self) -> None:
        text(self.name, "name", required=True, max_length=200)
        if not 0 <= self.fission_goal <= 10_000:
            raise InvalidArgument("must be 0 to 10000", field="fission_goal")
        text(self.fission_reward, "fission_reward", max_length=500)
        problem = reward_problem(self.fission_reward)
        if problem is not None:
            raise InvalidArgument(problem, field="fission_reward")
        text(self.description, "description", max_length=2000)
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise InvalidArgument("must be after starts_at", field="ends_at")
        if self.goal_leads < 0:
            raise InvalidArgument("must not be negative", field="goal_leads")


# Schedules without a zone are read in China time, where the official accounts run.
DEFAULT_TIME_ZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class Schedule:
    weekdays: tuple[int, ...] = ()
    start: str = ""
    end: str = ""
    time_zone: str = ""

    def validate(self) -> None:
        for n, day in enumerate(self.weekdays):
            if not 1 <= day <= 7:
                raise InvalidArgument(
                    "weekdays are 1 (Monday) to 7", field=f"schedule.weekdays[{n}]"
                )
        for name in ("start", "end"):
            value = getattr(self, name)
            if value and not _TIME_RE.match(value):
                raise InvalidArgument("must be HH:MM", field=f"schedule.{name}")
        if bool(self.start) != bool(self.end):
            raise InvalidArgument("start and end go together", field="schedule")
        if self.time_zone:
            try:
                ZoneInfo(self.time_zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise InvalidArgument(
                    "must be an IANA time zone", field="schedule.time_zone"
                ) from None

    @classmethod
    def of(cls, stored: dict[str, Any] | None) -> Schedule:
        stored = stored or {}
        return cls(
            weekdays=tuple(stored.get("weekdays", ())),
            start=stored.get("start", ""),
            end=stored.get("end", ""),
            time_zone=stored.get("time_zone", ""),
        )

    def is_open(self, at: datetime) -> bool:
        """Whether `at` falls in the schedule, read in its zone (Asia/Shanghai by default).

        No weekdays means every day; no start/end the whole day; an end before the start runs
        past midnight (22:00-02:00).
        """
        if not self.weekdays and not self.start:
            return True
        local = at.astimezone(ZoneInfo(self.time_zone or DEFAULT_TIME_ZONE))
        if self.weekdays and local.isoweekday() not in self.weekdays:
            return False
        if not self.start:
            return True
        clock = local.strftime("%H:%M")
        if self.start <= self.end:
            return self.start <= clock < self.end
        return clock >= self.start or clock < self.end

    def as_json(self) -> dict[str, Any]:
        return {
            "weekdays": list(self.weekdays),
            "start": self.start,
            "end": self.end,
            "time_zone": self.time_zone,
        }


@dataclass(frozen=True)
class ChannelSpec:
    campaign_id: str
    name: str
    kind: str
    scene: str = ""
    expires_at: datetime | None = None
    state: str = ""
    app_id: str = ""
    url: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    owner_team: str = ""
    welcome_message: str = ""
    expired_reply: str = ""
    tags: tuple[str, ...] = ()
    schedule: Schedule = field(default_factory=Schedule)
    daily_cap_per_rep: int = 0
    cost_currency: str = "CNY"
    cost_minor: int = 0
    region: str = ""
    corp_id: str = ""
    user_ids: tuple[str, ...] = ()
    skip_verify: bool = False

    def validate(self, now: datetime) -> None:
        text(self.campaign_id, "campaign_id", required=True, max_length=26)
        text(self.name, "name", required=True, max_length=200)
        if self.kind not in CHANNEL_KINDS:
            raise InvalidArgument(f"must be one of {', '.join(CHANNEL_KINDS)}", field="kind")
        if self.kind in QR_KINDS:
            if not _SCENE_RE.match(self.scene):
                raise InvalidArgument(
                    "a QR channel needs a scene of 1-64 letters, digits, '_', '-', '.'",
                    field="scene",
                )
        elif self.scene:
            raise InvalidArgument("only QR channels have a scene", field="scene")
        if self.kind == "qr_temporary":
            if self.expires_at is None:
                raise InvalidArgument("a temporary QR code needs an expiry", field="expires_at")
            if self.expires_at <= now:
                raise InvalidArgument("must be in the future", field="expires_at")
        if self.kind == "wecom_contact_way":
            if self.expires_at is not None and self.expires_at <= now:
                raise InvalidArgument("must be in the future", field="expires_at")
            if not _STATE_RE.match(self.state):
                raise InvalidArgument(
                    "a contact-me code needs a state of 1-30 letters, digits, '_', '-', '.'",
                    field="state",
                )
        elif self.state:
            raise InvalidArgument("only contact-me codes have a state", field="state")
        elif self.corp_id or self.user_ids or self.skip_verify:
            raise InvalidArgument("only contact-me codes have a corp and reps", field="corp_id")
        text(self.corp_id, "corp_id", max_length=64)
        if len(self.user_ids) > MAX_REPS:
            raise InvalidArgument(f"at most {MAX_REPS} reps", field="user_ids")
        for n, user_id in enumerate(self.user_ids):
            text(user_id, f"user_ids[{n}]", required=True, max_length=64)
        text(self.app_id, "app_id", max_length=64)
        text(self.url, "url", max_length=2000)
        if self.url and not self.url.startswith(("https://", "http://")):
            raise InvalidArgument("must be an http(s) URL", field="url")
        for key, value in self.parameters.items():
            text(key, "parameters", required=True, max_length=64)
            text(value, f"parameters.{key}", max_length=500)
        text(self.owner_team, "owner_team", max_length=100)
        text(self.welcome_message, "welcome_message", max_length=2000)
        text(self.expired_reply, "expired_reply", max_length=2000)
        if len(self.tags) > MAX_TAGS:
            raise InvalidArgument(f"at most {MAX_TAGS} tags", field="tags")
        for n, tag in enumerate(self.tags):
            text(tag, f"tags[{n}]", required=True, max_length=64)
        self.schedule.validate()
        if self.daily_cap_per_rep < 0:
            raise InvalidArgument("must not be negative", field="daily_cap_per_rep")
        if self.cost_minor < 0:
            raise InvalidArgument("must not be negative", field="cost.amount_minor")
        if not re.match(r"^[A-Z]{3}$", self.cost_currency):
            raise InvalidArgument("must be an ISO 4217 code", field="cost.currency")
        text(self.region, "region", max_length=100)


@dataclass(frozen=True)
class FormFieldSpec:
    name: str
    type: str
    label: str = ""
    required: bool = False
    consent_wording: str = ""
    max_length: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "label": self.label,
            "required": self.required,
            "consent_wording": self.consent_wording,
            "max_length": self.max_length or 500,
        }


@dataclass(frozen=True)
class LandingPageSpec:
    campaign_id: str
    title: str
    fields: tuple[FormFieldSpec, ...]
    channel_id: str = ""
    sign_in: str = "base"
    app_id: str = ""

    def validate(self) -> None:
        text(self.campaign_id, "campaign_id", required=True, max_length=26)
        if self.sign_in not in SIGN_INS:
            raise InvalidArgument(f"must be one of {', '.join(SIGN_INS)}", field="sign_in")
        text(self.app_id, "app_id", max_length=64)
        text(self.title, "title", required=True, max_length=200)
        if not self.fields:
            raise InvalidArgument("a form needs at least one field", field="fields")
        if len(self.fields) > MAX_FIELDS:
            raise InvalidArgument(f"at most {MAX_FIELDS} fields", field="fields")
        seen: set[str] = set()
        for n, f in enumerate(self.fields):
            where = f"fields[{n}]"
            if not _NAME_RE.match(f.name):
                raise InvalidArgument(
                    "a field name is a letter then letters, digits or '_'", field=f"{where}.name"
                )
            if f.name in seen:
                raise InvalidArgument(f"field {f.name!r} appears twice", field=f"{where}.name")
            seen.add(f.name)
            if f.type not in FIELD_TYPES:
                raise InvalidArgument(
                    f"must be one of {', '.join(FIELD_TYPES)}", field=f"{where}.type"
                )
            if f.type == "consent" and not f.consent_wording.strip():
                raise InvalidArgument(
                    "a consent field needs the wording shown to the customer",
                    field=f"{where}.consent_wording",
                )
            if not 0 <= f.max_length <= 5000:
                raise InvalidArgument("must be 0 to 5000", field=f"{where}.max_length")
            text(f.label, f"{where}.label", max_length=200)
            text(f.consent_wording, f"{where}.consent_wording", max_length=2000)
        if sum(1 for f in self.fields if f.type == "phone") > 1:
            raise InvalidArgument("at most one phone field", field="fields")


def text(value: str, field: str, *, required: bool = False, max_length: int) -> None:
    """A caller's string: length, no control characters (NUL breaks PostgreSQL), valid UTF-8."""
    if required and not value.strip():
        raise InvalidArgument("is required", field=field)
    if len(value) > max_length:
        raise InvalidArgument(f"longer than {max_length} characters", field=field)
    if any(ord(c) < 32 and c not in "\n\t\r" for c in value):
        raise InvalidArgument("contains control characters", field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument("is not valid UTF-8 text", field=field) from None


def is_id(value: str) -> bool:
    """Whether a string could be one of our ids (ULIDs); anything else is simply not found."""
    return 0 < len(value) <= 26 and value.isascii() and value.isalnum()
