"""The gateway's direct operations: QR and contact-me codes, web authorization, external
contacts and customer transfers. Each validates its input, resolves the tenant's account and
makes one paced WeChat call; WeChat's answers become domain errors the caller can act on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from closedloop_gateway.quotas.limits import default_apis
from closedloop_gateway.quotas.service import ApiQuotaView
from closedloop_gateway.wechat.caller import WeChatCaller
from closedloop_gateway.wechat.errors import TOKEN_ERRCODES, WeChatError, WeChatUnreachable
from loopkit.accounts import AccountRegistry, OfficialAccount, WecomCorp
from loopkit.errors import (
    DependencyUnavailable,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from loopkit.timestamps import now

T = TypeVar("T")
MAX_QR_EXPIRE_S = 30 * 86400
# WeChat's answers that mean "your input is wrong" rather than "the gateway is misconfigured".
_BAD_INPUT = {
    40029: "invalid code",
    40163: "code already used",
    40003: "invalid openid",
    40096: "invalid external_userid",
    41051: "invalid welcome_code",
}
_NOT_FOUND = {84061: "not an external contact of the corp", 40097: "unknown parameter value"}
TRANSFER_BATCH = 100


@dataclass(frozen=True)
class QuotaStatus:
    account_id: str
    apis: list[ApiQuotaView]
    # The corp's application ("<corp_id>/app") and its APIs; empty without one.
    application_account_id: str
    application_apis: list[ApiQuotaView]


@dataclass(frozen=True)
class QrCode:
    app_id: str
    ticket: str
    url: str
    image_url: str
    expires_at: datetime | None


@dataclass(frozen=True)
class ContactWay:
    corp_id: str
    config_id: str
    qr_code: str


@dataclass(frozen=True)
class OAuthIdentity:
    app_id: str
    openid: str
    unionid: str


@dataclass(frozen=True)
class ExternalContact:
    corp_id: str
    external_userid: str
    unionid: str
    name: str
    # 1 = WeChat user, 2 = WeCom user
    type: int
    follow_userids: list[str]


@dataclass(frozen=True)
class CustomerTransfer:
    external_userid: str
    errcode: int


@dataclass(frozen=True)
class CustomerTransferResult:
    external_userid: str
    # WeCom's status: 1 accepted, 2 waiting, 3 refused, 4 takeover limit, 5 no record
    status: int
    takeover_time: datetime | None


def domain_error(exc: WeChatError | WeChatUnreachable) -> Exception:
    """WeChat's answer as the error a gRPC caller should see."""
    if isinstance(exc, WeChatUnreachable) or exc.transient or exc.errcode in TOKEN_ERRCODES:
        return DependencyUnavailable(str(exc))
    if exc.errcode in _BAD_INPUT:
        return InvalidArgument(
            f"WeChat errcode {exc.errcode} ({_BAD_INPUT[exc.errcode]}): {exc.errmsg}"
        )
    if exc.errcode in _NOT_FOUND:
        return NotFound(f"WeChat errcode {exc.errcode} ({_NOT_FOUND[exc.errcode]}): {exc.errmsg}")
    return FailedPrecondition(f"WeChat errcode {exc.errcode} on {exc.api}: {exc.errmsg}")


def _require(value: str, field: str, max_len: int) -> str:
    if not value:
        raise InvalidArgument("is required", field=field)
    if len(value) > max_len:
        raise InvalidArgument(f"must be at most {max_len} characters", field=field)
    return value


class GatewayOperations:
    def __init__(self, registry: AccountRegistry, caller: WeChatCaller, *, mp_base: str) -> None:
        self.registry = registry
        self._caller = caller
        self._mp_base = mp_base.rstrip("/")

    async def _call(
        self, account: OfficialAccount | WecomCorp, api: str, fn: Callable[[Any], T]
    ) -> T:
        try:
            return await self._caller.call(account, api, fn)
        except (WeChatError, WeChatUnreachable) as exc:
            raise domain_error(exc) from None

    async def _post(self, corp: WecomCorp, api: str, body: dict[str, Any]) -> dict[str, Any]:
        """An API wechatpy has no method for, through its generic `post`."""
        answer: dict[str, Any] = await self._call(corp, api, lambda c: c.post(api, data=body))
        return answer

    # --- official account -------------------------------------------------------------------

    async def create_qr_code(
        self, tenant_id: str, app_id: str, scene_str: str, expire_seconds: int
    ) -> QrCode:
        account = self.registry.official_account(tenant_id, app_id)
        _require(scene_str, "scene_str", 64)
        if not 0 <= expire_seconds <= MAX_QR_EXPIRE_S:
            raise InvalidArgument(
                f"must be 0 (permanent) to {MAX_QR_EXPIRE_S}", field="expire_seconds"
            )
        body: dict[str, Any] = {
            "action_name": "QR_STR_SCENE" if expire_seconds else "QR_LIMIT_STR_SCENE",
            "action_info": {"scene": {"scene_str": scene_str}},
        }
        if expire_seconds:
            body["expire_seconds"] = expire_seconds
        at = now()
        answer = await self._call(account, "qrcode/create", lambda c: c.qrcode.create(body))
        ticket = str(answer["ticket"])
        lifetime = int(answer.get("expire_seconds") or 0)
        return QrCode(
            app_id=account.app_id,
            ticket=ticket,
            url=str(answer.get("url", "")),
            image_url=f"{self._mp_base}/cgi-bin/showqrcode?ticket={quote(ticket, safe='')}",
            expires_at=at + timedelta(seconds=lifetime) if lifetime else None,
        )

    def build_oauth_url(
        self, tenant_id: str, app_id: str, redirect_uri: str, userinfo: bool, state: str
    ) -> tuple[str, str]:
        account = self.registry.official_account(tenant_id, app_id)
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidArgument("must be an absolute http(s) URL", field="redirect_uri")
        if len(state) > 128:
            raise InvalidArgument("must be at most 128 characters", field="state")
        scope = "snsapi_userinfo" if userinfo else "snsapi_base"
        return account.app_id, self._caller.http.authorize_url(account, redirect_uri, scope, state)

    async def exchange_oauth_code(self, tenant_id: str, app_id: str, code: str) -> OAuthIdentity:
        account = self.registry.official_account(tenant_id, app_id)
        _require(code, "code", 512)
        await self._caller.quotas.acquire(account.app_id, "sns/oauth2/access_token")
        try:
            answer = await self._caller.http.exchange_code(account, code)
        except (WeChatError, WeChatUnreachable) as exc:
            raise domain_error(exc) from None
        return OAuthIdentity(
            app_id=account.app_id,
            openid=str(answer["openid"]),
            unionid=str(answer.get("unionid", "")),
        )

    # --- WeCom ------------------------------------------------------------------------------

    async def create_contact_way(
        self, tenant_id: str, corp_id: str, state: str, user_ids: list[str], skip_verify: bool
    ) -> ContactWay:
        corp = self.registry.wecom_corp(tenant_id, corp_id)
        _require(state, "state", 30)
        if not user_ids:
            raise InvalidArgument("name at least one rep", field="user_ids")
        if len(user_ids) > 100:
            raise InvalidArgument("at most 100 reps", field="user_ids")
        answer = await self._call(
            corp,
            "externalcontact/add_contact_way",
            lambda c: c.external_contact.add_contact_way(
                type=1 if len(user_ids) == 1 else 2,
                scene=2,  # a QR code
                skip_verify=skip_verify,
                state=state,
                user=list(user_ids),
            ),
        )
        return ContactWay(corp.corp_id, str(answer["config_id"]), str(answer.get("qr_code", "")))

    async def delete_contact_way(self, tenant_id: str, corp_id: str, config_id: str) -> None:
        corp = self.registry.wecom_corp(tenant_id, corp_id)
        _require(config_id, "config_id", 64)
        await self._call(
            corp,
            "externalcontact/del_contact_way",
            lambda c: c.external_contact.del_contact_way(config_id),
        )

    async def get_external_contact(
        self, tenant_id: str, corp_id: str, external_userid: str
    ) -> ExternalContact:
        corp = self.registry.wecom_corp(tenant_id, corp_id)
        _require(external_userid, "external_userid", 64)
        answer = await self._call(
            corp, "externalcontact/get", lambda c: c.external_contact.get(external_userid)
        )
        contact = answer.get("external_contact", {})
        return ExternalContact(
            corp_id=corp.corp_id,
            external_userid=str(contact.get("external_userid", external_userid)),
            unionid=str(contact.get("unionid", "")),
            name=str(contact.get("name", "")),
            type=int(contact.get("type", 0) or 0),
            follow_userids=[str(f.get("userid", "")) for f in answer.get("follow_user", [])],
        )

    def check_transfer(
        self,
        tenant_id: str,
        corp_id: str,
        handover_userid: str,
        takeover_userid: str,
        external_userids: list[str],
    ) -> WecomCorp:
        """The corp of a valid transfer request; raises the domain error of an invalid one."""
        corp = self.registry.wecom_corp(tenant_id, corp_id)
        _require(handover_userid, "handover_userid", 64)
        _require(takeover_userid, "takeover_userid", 64)
        if not external_userids:
            raise InvalidArgument("name at least one customer", field="external_userids")
        if handover_userid == takeover_userid:
            raise InvalidArgument("must differ from handover_userid", field="takeover_userid")
        return corp

    async def transfer_customers(
        self,
        tenant_id: str,
        corp_id: str,
        handover_userid: str,
        takeover_userid: str,
        external_userids: list[str],
        *,
        resigned: bool,
        success_msg: str = "",
    ) -> list[CustomerTransfer]:
        corp = self.check_transfer(
            tenant_id, corp_id, handover_userid, takeover_userid, external_userids
        )
        api = (
            "externalcontact/resigned/transfer_customer"
            if resigned
            else "externalcontact/transfer_customer"
        )
        outcomes: list[CustomerTransfer] = []
        # WeCom takes at most 100 customers per call.
        for start in range(0, len(external_userids), TRANSFER_BATCH):
            batch = list(external_userids[start : start + TRANSFER_BATCH])
            body: dict[str, Any] = {
                "handover_userid": handover_userid,
                "takeover_userid": takeover_userid,
                "external_userid": batch,
            }
            if success_msg and not resigned:
                body["transfer_success_msg"] = success_msg
            answer = await self._post(corp, api, body)
            outcomes += [
                CustomerTransfer(str(c["external_userid"]), int(c.get("errcode", 0)))
                for c in answer.get("customer", [])
            ]
        return outcomes

    async def transfer_result(
        self,
        tenant_id: str,
        corp_id: str,
        handover_userid: str,
        takeover_userid: str,
        *,
        resigned: bool,
    ) -> list[CustomerTransferResult]:
        corp = self.registry.wecom_corp(tenant_id, corp_id)
        _require(handover_userid, "handover_userid", 64)
        _require(takeover_userid, "takeover_userid", 64)
        api = (
            "externalcontact/resigned/transfer_result"
            if resigned
            else "externalcontact/transfer_result"
        )
        results: list[CustomerTransferResult] = []
        cursor = ""
        while True:
            body = {
                "handover_userid": handover_userid,
                "takeover_userid": takeover_userid,
                "cursor": cursor,
            }
            answer = await self._post(corp, api, body)
            for c in answer.get("customer", []):
                taken = int(c.get("takeover_time", 0) or 0)
                results.append(
                    CustomerTransferResult(
                        str(c["external_userid"]),
                        int(c.get("status", 0)),
                        datetime.fromtimestamp(taken, UTC) if taken else None,
                    )
                )
            cursor = str(answer.get("next_cursor", ""))
            if not cursor:
                return results

    # --- quotas -----------------------------------------------------------------------------

    async def quota_status(self, tenant_id: str, app_id: str, corp_id: str) -> QuotaStatus:
        """The account's quotas; for a corp with an application, the application's too."""
        if app_id and corp_id:
            raise InvalidArgument("name an app_id or a corp_id, not both", field="corp_id")
        account: OfficialAccount | WecomCorp = (
            self.registry.wecom_corp(tenant_id, corp_id)
            if corp_id
            else self.registry.official_account(tenant_id, app_id)
        )
        quotas = self._caller.quotas
        apis = await quotas.status(account.account_id, default_apis(account.kind))
        app = account.app() if isinstance(account, WecomCorp) else None
        if app is None:
            return QuotaStatus(account.account_id, apis, "", [])
        app_apis = await quotas.status(app.account_id, default_apis(app.kind))
        return QuotaStatus(account.account_id, apis, app.account_id, app_apis)
