"""The credential registry: each tenant's official accounts and WeCom corps.

Read once from settings (JSON or a mounted Secret file). Secrets are `SecretStr`, so they never
show in a repr, a log line or an error; nothing here is written to a table or an event.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from loopkit.errors import InvalidArgument, NotFound, PermissionDenied

Kind = Literal["official_account", "wecom_corp"]


class OfficialAccount(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str
    app_id: str
    app_secret: SecretStr
    # Callback signature token and EncodingAESKey (for the services receiving callbacks).
    token: SecretStr = SecretStr("")
    aes_key: SecretStr = SecretStr("")
    # The tenant's account used when a request names none (needed when it has several).
    default: bool = False

    @property
    def account_id(self) -> str:
        return self.app_id

    @property
    def kind(self) -> Kind:
        return "official_account"

    @property
    def secret(self) -> SecretStr:
        return self.app_secret


class WecomCorp(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str
    corp_id: str
    # The customer-contact ("external contact") secret: the token it yields can call
    # externalcontact/*.
    contact_secret: SecretStr
    agent_id: str = ""
    token: SecretStr = SecretStr("")
    aes_key: SecretStr = SecretStr("")
    default: bool = False

    @property
    def account_id(self) -> str:
        return self.corp_id

    @property
    def kind(self) -> Kind:
        return "wecom_corp"

    @property
    def secret(self) -> SecretStr:
        return self.contact_secret


Account = OfficialAccount | WecomCorp


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

    def all(self) -> Iterable[Account]:
        yield from self.official_accounts
        yield from self.wecom_corps

    def official_account(self, tenant_id: str, app_id: str) -> OfficialAccount:
        return _pick(self.official_accounts, tenant_id, app_id, "app_id", "official account")

    def wecom_corp(self, tenant_id: str, corp_id: str) -> WecomCorp:
        return _pick(self.wecom_corps, tenant_id, corp_id, "corp_id", "WeCom corp")

    def by_id(self, account_id: str) -> Account | None:
        return next((a for a in self.all() if a.account_id == account_id), None)


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
