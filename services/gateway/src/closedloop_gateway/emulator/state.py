"""The emulator's memory: apps and their tokens, quotas, armed failures, users, codes and the
log of every call."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

# Over-limit answers: per day, and per second (official account: 45011, WeCom: 45033).
DAILY_ERRCODE = 45009
RATE_ERRCODE = {"oa": 45011, "wecom": 45033, "wecom_app": 45033}


@dataclass
class Token:
    value: str
    account_id: str
    kind: str  # "oa" | "wecom" (the contact secret's) | "wecom_app" (an application's)
    expires_at: float
    # Replaced by a newer token: answered 40001/40014, still attributed to its account.
    revoked: bool = False


@dataclass
class Failure:
    errcode: int
    api: str
    count: int
    account_id: str = ""
    # Answer only after this many seconds (the call is recorded, and a success is applied).
    delay_s: float = 0.0


@dataclass
class Quota:
    daily: int = 0
    per_second: float = 0.0


@dataclass
class User:
    openid: str = ""
    app_id: str = ""
    unionid: str = ""
    corp_id: str = ""
    external_userid: str = ""
    name: str = ""
    follow_userids: list[str] = field(default_factory=list)


@dataclass
class Transfer:
    corp_id: str
    handover_userid: str
    takeover_userid: str
    external_userid: str
    resigned: bool
    status: int = 2  # waiting
    takeover_time: int = 0


class EmulatorState:
    def __init__(self, token_ttl_s: int = 7200) -> None:
        self.lock = threading.Lock()
        self.token_ttl_s = token_ttl_s
        self.secrets: dict[str, str] = {}  # account -> secret (first use wins unless configured)
        # corp -> (agent_id, secret) of its application: gettoken with that secret issues an
        # application token (the only kind message/send accepts), kept apart from the contact one.
        self.apps: dict[str, tuple[str, str]] = {}
        self.tokens: dict[str, Token] = {}  # token value -> token
        self.current: dict[str, str] = {}  # account -> its only valid token
        self.calls: list[dict[str, Any]] = []
        self.failures: list[Failure] = []
        # (account or "" for every account, api) -> its quota, counted per account
        self.quotas: dict[tuple[str, str], Quota] = {}
        self.used: dict[tuple[str, str, str], int] = {}  # (account, api, day) -> calls
        self.recent: dict[tuple[str, str], list[float]] = {}  # (account, api) -> call times
        self.users: list[User] = []
        self.codes: dict[str, dict[str, str]] = {}  # OAuth code -> {app_id, openid, scope}
        self.used_codes: set[str] = set()
        self.tickets: dict[str, dict[str, Any]] = {}
        self.contact_ways: dict[str, dict[str, Any]] = {}
        self.welcome_codes_used: set[str] = set()
        self.transfers: list[Transfer] = []
        # WeCom 1:1 broadcasts created by add_msg_template (what get_groupmsg_list_v2 lists).
        self.msg_templates: list[dict[str, Any]] = []
        self.counter = 0

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter:06d}{secrets.token_hex(4)}"

    def record(
        self, api: str, account_id: str, kind: str, body: Any, errcode: int
    ) -> dict[str, Any]:
        key = "app_id" if kind == "oa" else "corp_id"
        entry = {"api": api, key: account_id, "body": body, "at": time.time(), "errcode": errcode}
        self.calls.append(entry)
        return entry

    def issue_token(self, account_id: str, kind: str, slot: str = "") -> Token:
        """A new token of `account_id`; `slot` (default the account) is what it replaces."""
        slot = slot or account_id
        old = self.current.get(slot)
        if old is not None and old in self.tokens:
            self.tokens[old].revoked = True  # a new token invalidates the previous one at once
        token = Token(
            value=f"emu-{kind}-{secrets.token_urlsafe(24)}",
            account_id=account_id,
            kind=kind,
            expires_at=time.time() + self.token_ttl_s,
        )
        self.tokens[token.value] = token
        self.current[slot] = token.value
        return token

    def take_failure(self, api: str, account_id: str) -> Failure | None:
        for failure in self.failures:
            if failure.api in (api, "*") and failure.account_id in ("", account_id):
                failure.count -= 1
                if failure.count <= 0:
                    self.failures.remove(failure)
                return failure
        return None

    def over_quota(self, account_id: str, api: str, kind: str, day: str) -> int:
        """0, or the errcode of the limit this call would break (and the call is not counted)."""
        quota = self.quotas.get((account_id, api)) or self.quotas.get(("", api))
        if quota is None:
            return 0
        moment = time.monotonic()
        if quota.per_second > 0:
            window = [t for t in self.recent.get((account_id, api), []) if moment - t < 1.0]
            self.recent[(account_id, api)] = window
            if len(window) >= quota.per_second:
                return RATE_ERRCODE[kind]
        if quota.daily > 0 and self.used.get((account_id, api, day), 0) >= quota.daily:
            return DAILY_ERRCODE
        if quota.per_second > 0:
            self.recent[(account_id, api)].append(moment)
        self.used[(account_id, api, day)] = self.used.get((account_id, api, day), 0) + 1
        return 0

    def user(self, **match: str) -> User | None:
        for user in self.users:
            if all(getattr(user, k) == v for k, v in match.items() if v):
                return user
        return None
