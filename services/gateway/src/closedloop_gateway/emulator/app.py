"""The emulator's HTTP API: WeChat's and WeCom's own paths and answer shapes under /cgi-bin and
/sns, the web-authorization page under /connect, and /emulator/* to inspect and steer it.
Over 400 lines on purpose: one route per WeChat endpoint, each a few lines, kept side by side
with the answer shapes they share (a test tool, not service code)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from closedloop_gateway.emulator.state import (
    EmulatorState,
    Failure,
    Quota,
    Transfer,
    User,
)
from closedloop_gateway.quotas.limits import wechat_day
from loopkit.wechat.wecom import TRANSFER_IN_PROGRESS

Answer = dict[str, Any]
Handler = Callable[[EmulatorState, str, Answer], Answer]
# A 1x1 PNG: what showqrcode answers instead of a real code image.
_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
_ERRMSG = {
    40001: "invalid credential, access_token is invalid or not latest",
    40014: "invalid access_token",
    41001: "access_token missing",
    42001: "access_token expired",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit mustslower retry next minute",
    45033: "api concurrent out of limit",
    48002: "api forbidden",
    -1: "system error",
}


def _error(errcode: int, errmsg: str = "") -> Answer:
    return {"errcode": errcode, "errmsg": errmsg or _ERRMSG.get(errcode, "emulated error")}


def _ok(**fields: Any) -> Answer:
    return {"errcode": 0, "errmsg": "ok", **fields}


# --- official account ---------------------------------------------------------------------


def qrcode_create(st: EmulatorState, account_id: str, body: Answer) -> Answer:
    action = body.get("action_name", "")
    scene = body.get("action_info", {}).get("scene", {})
    if action not in ("QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE"):
        return _error(40053, "invalid action name")
    scene_str = str(scene.get("scene_str", scene.get("scene_id", "")))
    if not scene_str or len(scene_str) > 64:
        return _error(40054, "invalid scene")
    ticket = st.next_id("gQ")
    expire = int(body.get("expire_seconds", 60)) if "LIMIT" not in action else 0
    st.tickets[ticket] = {"app_id": account_id, "scene_str": scene_str, "expire": expire}
    answer = _ok(ticket=ticket, url=f"http://weixin.qq.com/q/{ticket}")
    if expire:
        answer["expire_seconds"] = min(expire, 2592000)
    return answer


def custom_send(st: EmulatorState, account_id: str, body: Answer) -> Answer:
    if not body.get("touser"):
        return _error(40003, "invalid openid")
    return _ok()


def template_send(st: EmulatorState, account_id: str, body: Answer) -> Answer:
    if not body.get("touser"):
        return _error(40003, "invalid openid")
    if not body.get("template_id"):
        return _error(40037, "invalid template_id")
    return _ok(msgid=int(time.time() * 1000) % 10**12 + st.counter)


OA_APIS: dict[str, Handler] = {
    "qrcode/create": qrcode_create,
    "message/custom/send": custom_send,
    "message/template/send": template_send,
}


# --- WeCom ----------------------------------------------------------------------------------


def add_contact_way(st: EmulatorState, corp_id: str, body: Answer) -> Answer:
    if not body.get("user") and not body.get("party"):
        return _error(40098, "user or party required")
    config_id = st.next_id("cfg")
    st.contact_ways[config_id] = {"corp_id": corp_id, **body}
    return _ok(config_id=config_id, qr_code=f"https://wework.qpic.cn/wwpic/{config_id}/0")


def del_contact_way(st: EmulatorState, corp_id: str, body: Answer) -> Answer:
    way = st.contact_ways.get(str(body.get("config_id", "")))
    if way is None or way["corp_id"] != corp_id:
        return _error(41044, "invalid config_id")
    del st.contact_ways[str(body["config_id"])]
    return _ok()


def get_contact(st: EmulatorState, corp_id: str, body: Answer) -> Answer:
    user = st.user(corp_id=corp_id, external_userid=str(body.get("external_userid", "")))
    if user is None or not body.get("external_userid"):
        return _error(84061, "not external contact")
    contact = {
        "external_userid": user.external_userid,
        "name": user.name or user.external_userid,
        "type": 1,
    }
    if user.unionid:
        contact["unionid"] = user.unionid
    follow = [{"userid": u, "createtime": int(time.time())} for u in user.follow_userids]
    return _ok(external_contact=contact, follow_user=follow)


def send_welcome(st: EmulatorState, corp_id: str, body: Answer) -> Answer:
    code = str(body.get("welcome_code", ""))
    if not code or code in st.welcome_codes_used:
        return _error(41051, "invalid welcome_code")
    st.welcome_codes_used.add(code)
    return _ok()


def add_msg_template(st: EmulatorState, corp_id: str, body: Answer) -> Answer:
    if not body.get("sender") or not body.get("external_userid"):
        return _error(41048, "sender and external_userid required")
    msgid = st.next_id("msg")
    st.msg_templates.append(
        {
            "msgid": msgid,
            "corp_id": corp_id,
            "creator": body["sender"],
            "create_time": int(time.time()),
            "text": body.get("text", {}),
        }
    )
    return _ok(fail_list=[], msgid=msgid)


def groupmsg_list(st: EmulatorState, corp_id: str, body: Answer) -> Answer:
    """externalcontact/get_groupmsg_list_v2: a corp's broadcasts by creator and time."""
    start, end = int(body.get("start_time", 0)), int(body.get("end_time", 0))
    found = [
        {k: m[k] for k in ("msgid", "creator", "create_time", "text")}
        for m in st.msg_templates
        if m["corp_id"] == corp_id
        and start <= m["create_time"] <= end
        and body.get("creator") in (None, "", m["creator"])
    ]
    return _ok(group_msg_list=found, next_cursor="")


def transfer(resigned: bool) -> Handler:
    def handle(st: EmulatorState, corp_id: str, body: Answer) -> Answer:
        customers = []
        for external_userid in body.get("external_userid", []):
            if any(
                t.corp_id == corp_id and t.external_userid == external_userid and t.status == 2
                for t in st.transfers
            ):
                # Still waiting on an earlier transfer: WeCom refuses the customer.
                customers.append(
                    {"external_userid": external_userid, "errcode": TRANSFER_IN_PROGRESS}
                )
                continue
            st.transfers = [
                t
                for t in st.transfers
                if not (t.corp_id == corp_id and t.external_userid == external_userid)
            ]
            st.transfers.append(
                Transfer(
                    corp_id,
                    str(body.get("handover_userid", "")),
                    str(body.get("takeover_userid", "")),
                    str(external_userid),
                    resigned,
                )
            )
            customers.append({"external_userid": external_userid, "errcode": 0})
        return _ok(customer=customers)

    return handle


def transfer_result(resigned: bool) -> Handler:
    def handle(st: EmulatorState, corp_id: str, body: Answer) -> Answer:
        found = [
            {
                "external_userid": t.external_userid,
                "status": t.status,
                "takeover_time": t.takeover_time,
            }
            for t in st.transfers
            if t.corp_id == corp_id
            and t.resigned == resigned
            and t.handover_userid == body.get("handover_userid")
            and t.takeover_userid == body.get("takeover_userid")
        ]
        return _ok(customer=found, next_cursor="")

    return handle


WECOM_APIS: dict[str, Handler] = {
    "externalcontact/add_contact_way": add_contact_way,
    "externalcontact/del_contact_way": del_contact_way,
    "externalcontact/get": get_contact,
    "externalcontact/send_welcome_msg": send_welcome,
    "externalcontact/add_msg_template": add_msg_template,
    "externalcontact/get_groupmsg_list_v2": groupmsg_list,
    "externalcontact/transfer_customer": transfer(False),
    "externalcontact/transfer_result": transfer_result(False),
    "externalcontact/resigned/transfer_customer": transfer(True),
    "externalcontact/resigned/transfer_result": transfer_result(True),
}


# --- WeCom application ----------------------------------------------------------------------


def message_send(st: EmulatorState, corp_id: str, body: Answer) -> Answer:
    """message/send: a text or markdown from the corp's application to its members."""
    agent_id = st.apps.get(corp_id, ("", ""))[0]
    if str(body.get("agentid", "")) != agent_id:
        return _error(40056, "invalid agentid")
    if not body.get("touser") and not body.get("toparty") and not body.get("totag"):
        return _error(40035, "touser, toparty and totag are all empty")
    msgtype = body.get("msgtype")
    if msgtype not in ("text", "markdown") or not body.get(msgtype, {}).get("content"):
        return _error(41009 if msgtype == "text" else 40008, "invalid message content")
    return _ok(invaliduser="", invalidparty="", invalidtag="", msgid=st.next_id("msg"))


APP_APIS: dict[str, Handler] = {"message/send": message_send}


async def _body_of(request: Request) -> Answer:
    if request.method == "GET":
        return {k: v for k, v in request.query_params.items() if k != "access_token"}
    raw = await request.body()
    try:
        parsed = json.loads(raw or b"{}")
    except ValueError:
        return {"_unparsed": raw.decode(errors="replace")[:1000]}
    return parsed if isinstance(parsed, dict) else {"_body": parsed}


def _answer(
    st: EmulatorState, api: str, kind: str, *, value: str, body: Answer, handler: Handler
) -> tuple[Answer, float]:
    """WeChat's answer to an API call with token `value`, recorded; and how long to hold it."""
    delay = 0.0
    with st.lock:
        token = st.tokens.get(value)
        account_id = token.account_id if token else ""
        if not value:
            answer = _error(41001)
        elif token is not None and {token.kind, kind} == {"wecom", "wecom_app"}:
            # A WeCom token of the other secret: valid, but not allowed to call this API.
            answer = _error(48002, f"api forbidden: {api} needs the {kind} token")
        elif token is None or token.kind != kind or token.revoked:
            answer = _error(40001 if kind == "oa" else 40014)
        elif token.expires_at < time.time():
            answer = _error(42001)
        else:
            failure = st.take_failure(api, account_id)
            over = st.over_quota(account_id, api, kind, wechat_day_now())
            if failure is not None:
                delay = failure.delay_s
            if failure is not None and failure.errcode != 0:
                answer = _error(failure.errcode)
            elif over:
                answer = _error(over)
            else:
                answer = handler(st, account_id, body)
        st.record(api, account_id, kind, body, int(answer.get("errcode", 0)))
    return answer, delay


def create_app(state: EmulatorState | None = None) -> FastAPI:
    st = state or EmulatorState()
    app = FastAPI(title="ClosedLoop WeChat emulator", docs_url=None, redoc_url=None)
    app.state.emulator = st

    async def api_call(request: Request, api: str, kind: str, handler: Handler) -> JSONResponse:
        body = await _body_of(request)
        answer, delay = _answer(
            st,
            api,
            kind,
            value=request.query_params.get("access_token", ""),
            body=body,
            handler=handler,
        )
        if delay:
            await asyncio.sleep(delay)
        return JSONResponse(answer)

    # --- tokens -----------------------------------------------------------------------------

    def issue(account_id: str, secret: str, kind: str, api: str) -> JSONResponse:
        with st.lock:
            known = st.secrets.setdefault(account_id, secret)
            if not account_id or not secret or known != secret:
                answer = _error(40125 if kind == "oa" else 40001, "invalid appsecret")
            else:
                failure = st.take_failure(api, account_id)
                if failure is not None and failure.errcode != 0:
                    answer = _error(failure.errcode)
                else:
                    token = st.issue_token(account_id, kind)
                    answer = {"access_token": token.value, "expires_in": st.token_ttl_s}
            st.record(api, account_id, kind, {}, int(answer.get("errcode", 0)))
        return JSONResponse(answer)

    @app.get("/cgi-bin/token")
    async def oa_token(appid: str = "", secret: str = "", grant_type: str = "") -> JSONResponse:
        if grant_type != "client_credential":
            return JSONResponse(_error(40002, "invalid grant_type"))
        return issue(appid, secret, "oa", "token")

    @app.get("/cgi-bin/gettoken")
    async def wecom_token(corpid: str = "", corpsecret: str = "") -> JSONResponse:
        with st.lock:
            app_secret = st.apps.get(corpid, ("", ""))[1]
        if app_secret and corpsecret == app_secret:
            return issue_app(corpid)
        return issue(corpid, corpsecret, "wecom", "gettoken")

    def issue_app(corp_id: str) -> JSONResponse:
        """An application token: replaces the application's previous one, not the contact one."""
        with st.lock:
            failure = st.take_failure("gettoken", corp_id)
            if failure is not None and failure.errcode != 0:
                answer = _error(failure.errcode)
            else:
                token = st.issue_token(corp_id, "wecom_app", slot=f"{corp_id}/app")
                answer = {"access_token": token.value, "expires_in": st.token_ttl_s}
            st.record(
                "gettoken", corp_id, "wecom_app", {"app": True}, int(answer.get("errcode", 0))
            )
        return JSONResponse(answer)

    @app.api_route("/cgi-bin/{api:path}", methods=["GET", "POST"])
    async def cgi_bin(api: str, request: Request) -> Response:
        if api == "showqrcode":
            ticket = request.query_params.get("ticket", "")
            if ticket not in st.tickets:
                return JSONResponse(_error(40097, "invalid ticket"), status_code=404)
            return Response(_PNG, media_type="image/png")
        if api in OA_APIS:
            return await api_call(request, api, "oa", OA_APIS[api])
        if api in WECOM_APIS:
            return await api_call(request, api, "wecom", WECOM_APIS[api])
        if api in APP_APIS:
            return await api_call(request, api, "wecom_app", APP_APIS[api])
        return JSONResponse(_error(48001, f"api unauthorized: {api} is not emulated"))

    _oauth_routes(app, st)
    _control_routes(app, st)
    return app


def _oauth_routes(app: FastAPI, st: EmulatorState) -> None:
    """The web-authorization page and the code exchange."""

    @app.get("/connect/oauth2/authorize")
    async def authorize(
        appid: str = "",
        redirect_uri: str = "",
        scope: str = "snsapi_base",
        state: str = "",
        emulator_openid: str = "",
    ) -> Response:
        if not appid or not redirect_uri.startswith(("http://", "https://")):
            return JSONResponse(_error(10003, "redirect_uri or appid invalid"), status_code=400)
        with st.lock:
            openid = emulator_openid or f"o-emu-{appid}"
            code = st.next_id("code")
            st.codes[code] = {"app_id": appid, "openid": openid, "scope": scope}
            st.record("connect/oauth2/authorize", appid, "oa", {"scope": scope, "state": state}, 0)
        parts = urlsplit(redirect_uri)
        query = [*parse_qsl(parts.query), ("code", code), ("state", state)]
        return RedirectResponse(urlunsplit(parts._replace(query=urlencode(query))), 302)

    @app.get("/sns/oauth2/access_token")
    async def oauth_token(
        appid: str = "", secret: str = "", code: str = "", grant_type: str = ""
    ) -> JSONResponse:
        with st.lock:
            grant = st.codes.get(code)
            if st.secrets.setdefault(appid, secret) != secret:
                answer = _error(40125, "invalid appsecret")
            elif code in st.used_codes:
                answer = _error(40163, "code been used")
            elif grant is None or grant["app_id"] != appid:
                answer = _error(40029, "invalid code")
            else:
                st.used_codes.add(code)
                answer = {
                    "access_token": f"emu-sns-{code}",
                    "expires_in": 7200,
                    "refresh_token": f"emu-snsr-{code}",
                    "openid": grant["openid"],
                    "scope": grant["scope"],
                }
                user = st.user(app_id=appid, openid=grant["openid"])
                if user is not None and user.unionid and grant["scope"] == "snsapi_userinfo":
                    answer["unionid"] = user.unionid
            st.record("sns/oauth2/access_token", appid, "oa", {}, int(answer.get("errcode", 0)))
        return JSONResponse(answer)


def _control_routes(app: FastAPI, st: EmulatorState) -> None:
    """/emulator/*: the call log, and steering for tests and people trying things."""

    @app.get("/emulator/calls")
    async def calls(api: str = "", account: str = "") -> list[dict[str, Any]]:
        with st.lock:
            return [
                c
                for c in st.calls
                if (not api or c["api"] == api)
                and (not account or account in (c.get("app_id"), c.get("corp_id")))
            ]

    @app.post("/emulator/fail")
    async def fail(request: Request) -> Answer:
        spec = await _body_of(request)
        with st.lock:
            st.failures.append(
                Failure(
                    errcode=int(spec.get("errcode", -1)),
                    api=str(spec.get("api", "*")),
                    count=int(spec.get("count", 1)),
                    account_id=str(spec.get("app_id") or spec.get("corp_id") or ""),
                    delay_s=float(spec.get("delay_s", 0)),
                )
            )
        return {"armed": True}

    @app.post("/emulator/quota")
    async def quota(request: Request) -> Answer:
        spec = await _body_of(request)
        with st.lock:
            account = str(spec.get("app_id") or spec.get("corp_id") or "")
            st.quotas[(account, str(spec["api"]))] = Quota(
                daily=int(spec.get("daily", 0)), per_second=float(spec.get("per_second", 0))
            )
        return {"ok": True}

    @app.post("/emulator/users")
    async def users(request: Request) -> Answer:
        spec = await _body_of(request)
        with st.lock:
            st.users.append(
                User(
                    openid=str(spec.get("openid", "")),
                    app_id=str(spec.get("app_id", "")),
                    unionid=str(spec.get("unionid", "")),
                    corp_id=str(spec.get("corp_id", "")),
                    external_userid=str(spec.get("external_userid", "")),
                    name=str(spec.get("name", "")),
                    follow_userids=[str(u) for u in spec.get("follow_userids", [])],
                )
            )
        return {"ok": True}

    @app.post("/emulator/transfers")
    async def set_transfer(request: Request) -> Answer:
        """Decide a pending transfer as the customer would: {corp_id, external_userid, status}."""
        spec = await _body_of(request)
        with st.lock:
            for t in st.transfers:
                if t.corp_id == spec.get("corp_id") and t.external_userid == spec.get(
                    "external_userid"
                ):
                    t.status = int(spec.get("status", 1))
                    t.takeover_time = int(time.time()) if t.status == 1 else 0
                    return {"ok": True}
        return {"ok": False}

    @app.post("/emulator/apps")
    async def apps(request: Request) -> Answer:
        """Register a corp's application: {corp_id, agent_id, secret}."""
        spec = await _body_of(request)
        with st.lock:
            st.apps[str(spec["corp_id"])] = (str(spec["agent_id"]), str(spec["secret"]))
        return {"ok": True}

    @app.post("/emulator/tokens/expire")
    async def expire_tokens(request: Request) -> Answer:
        """Expire an account's current token now (WeChat answers 42001 until it is refreshed);
        `"app": true` with a corp_id: its application's token."""
        spec = await _body_of(request)
        account = str(spec.get("app_id") or spec.get("corp_id") or "")
        with st.lock:
            value = st.current.get(f"{account}/app" if spec.get("app") else account)
            if value and value in st.tokens:
                st.tokens[value].expires_at = 0
        return {"ok": bool(value)}


def wechat_day_now() -> str:
    return wechat_day(datetime.now(UTC))
