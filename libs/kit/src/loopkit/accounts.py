"""The WeChat account registry: each tenant's official accounts and WeCom corps, configured once.

One source (`CLOSEDLOOP_ACCOUNTS` as JSON and/or `CLOSEDLOOP_ACCOUNTS_FILE`, a mounted Secret)
serves every service that deals with WeChat: the gateway takes the app and contact secrets from it
to call WeChat; acquisition and conversion take the callback token, EncodingAESKey and tenant of
each account to verify WeChat's and WeCom's callbacks. Secrets are `SecretStr`, so they never show
in a repr, a log line or an error; nothing here is written to a table or an event.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from loopkit.errors import InvalidArgument, NotFound, PermissionDenied
from loopkit.settings import Settings

Kind = Literal["official_account", "wecom_corp"]
# WeChat's EncodingAESKey: 43 characters (base64 of 32 bytes without the padding).
AES_KEY_LENGTH = 43


class _Account(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str
    # Callback signature token and EncodingAESKey (read by the services receiving callbacks);
    # both empty: the account's callbacks are not received here.
    token: SecretStr = SecretStr("")
    aes_key: SecretStr = SecretStr("")
    # The tenant's account used when a request names none (needed when it has several).
    default: bool = False

    @field_validator("aes_key")
    @classmethod
    def _aes_key_shape(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value() and len(value.get_secret_value()) != AES_KEY_LENGTH:
            raise ValueError(f"the EncodingAESKey is {AES_KEY_LENGTH} characters")
        return value

    @property
    def receives_callbacks(self) -> bool:
        return bool(self.token.get_secret_value())


class OfficialAccount(_Account):
    app_id: str
    app_secret: SecretStr

    @property
    def account_id(self) -> str:
        return self.app_id

    @property
    def kind(self) -> Kind:
        return "official_account"

    @property
    def secret(self) -> SecretStr:
        return self.app_secret


class WecomCorp(_Account):
    corp_id: str
    # The customer-contact ("external contact") secret: the token it yields can call
    # externalcontact/*.
    contact_secret: SecretStr
    # The corp's own application ("agent") that messages its members (the reps): its id and its
    # secret. The token that secret yields is another token than the contact secret's, and is the
    # only one WeCom accepts for message/send. Optional: without it no rep is messaged.
    agent_id: str = ""
    agent_secret: SecretStr = SecretStr("")

    @property
    def account_id(self) -> str:
        return self.corp_id

    @property
    def kind(self) -> Kind:
        return "wecom_corp"

    @property
    def secret(self) -> SecretStr:
        return self.contact_secret

    def app(self) -> WecomApp | None:
        """The corp's application, when its agent secret is configured."""
        if not self.agent_secret.get_secret_value():
            return None
        return WecomApp(self.tenant_id, self.corp_id, self.agent_id, self.agent_secret)


@dataclass(frozen=True)
class WecomApp:
    """A WeCom corp's application: its own access token (from `agent_secret`), kept apart from
    the contact secret's token under its own id, for the APIs only an application may call
    (message/send to the corp's members)."""

    tenant_id: str
    corp_id: str
    agent_id: str
    agent_secret: SecretStr

    @property
    def account_id(self) -> str:
        return app_account_id(self.corp_id)

    @property
    def kind(self) -> str:
        return "wecom_app"

    @property
    def secret(self) -> SecretStr:
        return self.agent_secret


def app_account_id(corp_id: str) -> str:
    """The id a corp's application token, quota and pace are kept under."""
    return f"{corp_id}/app"


Account = OfficialAccount | WecomCorp
# What holds an access token: an account, or a corp's application.
Credential = OfficialAccount | WecomCorp | WecomApp


class _RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    official_accounts: list[OfficialAccount] = []
    wecom_corps: list[WecomCorp] = []


class RegistryError(ValueError):
    """The configured registry is malformed; the message never contains a secret."""


@dataclass(frozen=True)
class AccountRegistry:
    official_accounts: tuple[OfficialAccount, ...]
    wecom_corps: tuple[WecomCorp, ...]

    @classmethod
    def parse(cls, *sources: str) -> AccountRegistry:
        """From JSON documents (the setting, the Secret file); accounts of all are combined."""
        oas: list[OfficialAccount] = []
        corps: list[WecomCorp] = []
        for n, raw in enumerate(sources):
            if not raw.strip():
                continue
            try:
                parsed = _RegistryFile.model_validate(json.loads(raw))
            except json.JSONDecodeError as exc:
                # The position only: the text around it may be a secret.
                raise RegistryError(f"accounts source {n}: not JSON (at {exc.pos})") from None
            except ValidationError as exc:
                where = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                )
                raise RegistryError(f"accounts source {n}: {where}") from None
            oas += parsed.official_accounts
            corps += parsed.wecom_corps
        registry = cls(tuple(oas), tuple(corps))
        registry._check()
        return registry

    @classmethod
    def load(cls, inline: SecretStr, file: Path | None) -> AccountRegistry:
        sources = [inline.get_secret_value()]
        if file is not None:
            try:
                sources.append(file.read_text())
            except OSError as exc:
                raise RegistryError(f"cannot read accounts file {file}: {exc.strerror}") from None
        return cls.parse(*sources)

    def _check(self) -> None:
        seen: set[str] = set()
        for account in self.all():
            if not account.account_id or not account.tenant_id:
                raise RegistryError("every account needs a tenant_id and an app_id/corp_id")
            if not account.secret.get_secret_value():
                raise RegistryError(f"account {account.account_id} has an empty secret")
            if account.account_id in seen:
                raise RegistryError(f"account {account.account_id} is listed twice")
            seen.add(account.account_id)
            if account.aes_key.get_secret_value() and not account.receives_callbacks:
                raise RegistryError(f"account {account.account_id} has an aes_key but no token")
            app = account.app() if isinstance(account, WecomCorp) else None
            if app is not None and not app.agent_id.isdigit():
                raise RegistryError(
                    f"corp {app.corp_id} has an agent_secret: its agent_id must be the "
                    "application's number"
                )

    def all(self) -> Iterable[Account]:
        yield from self.official_accounts
        yield from self.wecom_corps

    def official_account(self, tenant_id: str, app_id: str) -> OfficialAccount:
        return _pick(self.official_accounts, tenant_id, app_id, "app_id", "official account")

    def wecom_corp(self, tenant_id: str, corp_id: str) -> WecomCorp:
        return _pick(self.wecom_corps, tenant_id, corp_id, "corp_id", "WeCom corp")

    def by_id(self, account_id: str) -> Account | None:
        return next((a for a in self.all() if a.account_id == account_id), None)

    def credentials(self) -> Iterable[Credential]:
        """Everything that holds an access token: the accounts and the corps' applications."""
        yield from self.all()
        for corp in self.wecom_corps:
            app = corp.app()
            if app is not None:
                yield app

    def credential(self, account_id: str) -> Credential | None:
        return next((c for c in self.credentials() if c.account_id == account_id), None)

    def callback_app(self, app_id: str) -> OfficialAccount | None:
        """The official account whose server callbacks arrive for `app_id` (None: not ours)."""
        found = next((a for a in self.official_accounts if a.app_id == app_id), None)
        return found if found is not None and found.receives_callbacks else None

    def callback_corp(self, corp_id: str) -> WecomCorp | None:
        """The WeCom corp whose contact callbacks arrive for `corp_id` (always encrypted, so it
        needs its EncodingAESKey too)."""
        found = next((c for c in self.wecom_corps if c.corp_id == corp_id), None)
        if found is None or not found.receives_callbacks or not found.aes_key.get_secret_value():
            return None
        return found


class RetiredSetting(RuntimeError):
    """A setting the account registry replaced is still configured."""


class AccountSettings(Settings):
    """Settings of a service that reads the account registry: `CLOSEDLOOP_ACCOUNTS` (JSON) and/or
    `CLOSEDLOOP_ACCOUNTS_FILE` (a path; the accounts of both are combined). As every setting, a
    per-service `CLOSEDLOOP_<SERVICE>_ACCOUNTS[_FILE]` overrides the shared one."""

    accounts: SecretStr = SecretStr("")
    accounts_file: Path | None = None
    # Settings this registry replaced -> what replaces them: refused at start-up, so a deployment
    # still setting one fails with the reason instead of answering every callback 404.
    retired: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _refuse_retired(cls, data: Any) -> Any:
        given = set(data) if isinstance(data, dict) else set()
        for name, replacement in cls.retired.items():
            if name in given or f"CLOSEDLOOP_{name.upper()}" in os.environ:
                # Not a ValueError: pydantic would wrap it with the input, secrets and all.
                raise RetiredSetting(f"setting {name} is retired: configure {replacement} instead")
        return data

    def account_registry(self) -> AccountRegistry:
        """The registry, read now (at start-up); RegistryError names no secret."""
        return AccountRegistry.load(self.accounts, self.accounts_file)


A = TypeVar("A", OfficialAccount, WecomCorp)


def _pick(accounts: tuple[A, ...], tenant_id: str, wanted: str, field: str, what: str) -> A:
    if wanted:
        found = next((a for a in accounts if a.account_id == wanted), None)
        if found is None:
            raise NotFound(f"no {what} {wanted!r} is configured", field=field)
        if found.tenant_id != tenant_id:
            raise PermissionDenied(f"{what} {wanted!r} belongs to another tenant", field=field)
        return found
    own = [a for a in accounts if a.tenant_id == tenant_id]
    if not own:
        raise NotFound(f"tenant {tenant_id!r} has no {what} configured", field=field)
    if len(own) == 1:
        return own[0]
    defaults = [a for a in own if a.default]
    if len(defaults) != 1:
        raise InvalidArgument(
            f"tenant {tenant_id!r} has several {what}s and no single default: name one",
            field=field,
        )
    return defaults[0]
