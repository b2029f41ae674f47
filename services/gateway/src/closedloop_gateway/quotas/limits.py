"""Per-API limits: WeChat's documented daily limits and a pace per second, overridable by the
`quotas` setting. The gateway uses only `headroom` (default 80 %) of each."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from loopkit.errors import InvalidArgument

# WeChat counts days in China time: daily quotas reset at midnight UTC+8.
CHINA = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class ApiLimit:
    # Calls per WeChat day per account (0 = not limited).
    daily: int = 0
    # Calls per second per account and replica (0 = not paced).
    per_second: float = 0.0


# Official account: WeChat's "interface call frequency" table (calls per day per account);
# WeCom: 10,000 calls per minute per API per corp (~166/s). The per-second paces of the official
# account's APIs are the gateway's own conservative choice (WeChat publishes none).
DEFAULT_LIMITS: dict[str, ApiLimit] = {
    "qrcode/create": ApiLimit(daily=100_000, per_second=50),
    "message/custom/send": ApiLimit(daily=500_000, per_second=100),
    "message/template/send": ApiLimit(daily=100_000, per_second=100),
    "sns/oauth2/access_token": ApiLimit(daily=0, per_second=200),
    "externalcontact/add_contact_way": ApiLimit(daily=0, per_second=166),
    "externalcontact/del_contact_way": ApiLimit(daily=0, per_second=166),
    "externalcontact/get": ApiLimit(daily=0, per_second=166),
    "externalcontact/send_welcome_msg": ApiLimit(daily=0, per_second=166),
    "externalcontact/add_msg_template": ApiLimit(daily=0, per_second=166),
    "externalcontact/get_groupmsg_list_v2": ApiLimit(daily=0, per_second=166),
    "externalcontact/transfer_customer": ApiLimit(daily=0, per_second=166),
    "externalcontact/transfer_result": ApiLimit(daily=0, per_second=166),
    "externalcontact/resigned/transfer_customer": ApiLimit(daily=0, per_second=166),
    "externalcontact/resigned/transfer_result": ApiLimit(daily=0, per_second=166),
    # A corp application's messages to members: WeCom counts person-times per day (200 per
    # licensed member) and per member per minute (30); the pace is the gateway's own choice.
    "message/send": ApiLimit(daily=0, per_second=20),
}
# The APIs only a corp's application may call, with its own token: their quotas and pace are
# kept under the application's id ("<corp_id>/app"), not the corp's or an official account's.
APPLICATION_APIS = frozenset({"message/send"})


def default_apis(kind: str) -> list[str]:
    """The APIs a status of an account of `kind` lists even when unused today:
    "official_account", "wecom_corp" (its contact secret's) or "wecom_app" (its application's)."""
    if kind == "wecom_app":
        return sorted(APPLICATION_APIS)
    wecom = kind == "wecom_corp"
    return [
        api
        for api in DEFAULT_LIMITS
        if api not in APPLICATION_APIS and api.startswith("externalcontact/") == wecom
    ]


def parse_limits(raw: str) -> dict[str, ApiLimit]:
    """The defaults with the setting's JSON overrides merged in."""
    limits = dict(DEFAULT_LIMITS)
    if not raw.strip():
        return limits
    try:
        given = json.loads(raw)
        if not isinstance(given, dict):
            raise TypeError("an object of API -> {daily, per_second}")
        for api, spec in given.items():
            base = limits.get(api, ApiLimit())
            limits[api] = ApiLimit(
                daily=int(spec.get("daily", base.daily)),
                per_second=float(spec.get("per_second", base.per_second)),
            )
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidArgument(f"CLOSEDLOOP_GATEWAY_QUOTAS: {exc}", field="quotas") from None
    return limits


def wechat_day(at: datetime) -> str:
    return at.astimezone(CHINA).date().isoformat()


def next_wechat_day(at: datetime) -> datetime:
    """The next midnight in China time, as UTC."""
    local = at.astimezone(CHINA)
    midnight = datetime(local.year, local.month, local.day, tzinfo=CHINA) + timedelta(days=1)
    return midnight.astimezone(UTC)
