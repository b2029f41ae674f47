"""Business metrics of the gateway: send outcomes, WeChat calls, quota use and pauses, token
refreshes. Labels are account ids and API paths, never a token or secret."""

from __future__ import annotations

from opentelemetry import metrics

_meter = metrics.get_meter("closedloop.gateway")
sends = _meter.create_counter(
    "closedloop_gateway_sends", unit="{send}", description="Send outcomes, by kind and outcome"
)
api_calls = _meter.create_counter(
    "closedloop_gateway_api_calls",
    unit="{call}",
    description="Calls to WeChat/WeCom, by API and outcome (ok, errcode, transient)",
)
quota_used = _meter.create_gauge(
    "closedloop_gateway_quota_used_ratio",
    unit="1",
    description="Share of the API's daily limit used today, per account and API",
)
quota_paused = _meter.create_gauge(
    "closedloop_gateway_quota_paused",
    unit="1",
    description="1 while an account's API is paused after an over-limit answer, else 0",
)
token_refreshes = _meter.create_counter(
    "closedloop_gateway_token_refreshes",
    unit="{refresh}",
    description="Access tokens fetched from WeChat (fetched) or adopted from another replica",
)


def start() -> None:
    """Export every series from the start, so dashboards show 0 rather than no data."""
    for outcome in ("sent", "failed", "paused", "queued", "in_doubt"):
        sends.add(0, {"kind": "official_account_text", "outcome": outcome})
        sends.add(0, {"kind": "wecom_member_text", "outcome": outcome})  # rep notices
    api_calls.add(0, {"api": "token", "outcome": "ok"})
    token_refreshes.add(0, {"outcome": "fetched"})
    token_refreshes.add(0, {"outcome": "adopted"})


def send_outcome(kind: str, outcome: str) -> None:
    sends.add(1, {"kind": kind, "outcome": outcome})


def api_call(api: str, outcome: str) -> None:
    api_calls.add(1, {"api": api, "outcome": outcome})


def token_refresh(account_id: str, outcome: str) -> None:
    token_refreshes.add(1, {"account": account_id, "outcome": outcome})


def quota(account_id: str, api: str, used: int, daily_limit: int, paused: bool) -> None:
    labels = {"account": account_id, "api": api}
    if daily_limit > 0:
        quota_used.set(used / daily_limit, labels)
    quota_paused.set(1 if paused else 0, labels)
