"""A client of the whole running platform, speaking only the services' public gRPC and HTTP APIs.

Used by `make demo` (synthetic customers through the loop) and by the whole-loop test, so both
drive the loop exactly as an integrator would.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import grpc
import httpx
from google.protobuf.timestamp_pb2 import Timestamp

from closedloop.acquisition.v1 import acquisition_pb2 as acq
from closedloop.acquisition.v1 import acquisition_pb2_grpc
from closedloop.common.v1 import common_pb2 as c
from closedloop.conversion.v1 import conversion_pb2 as conv
from closedloop.conversion.v1 import conversion_pb2_grpc
from closedloop.events.v1 import acquisition_events_pb2 as acqev
from closedloop.events.v1 import conversion_events_pb2 as convev
from closedloop.events.v1 import referral_events_pb2 as refev
from closedloop.referral.v1 import referral_pb2 as ref
from closedloop.referral.v1 import referral_pb2_grpc
from closedloop.retention.v1 import retention_pb2 as ret
from closedloop.retention.v1 import retention_pb2_grpc
from loopkit.grpc_client import keyed_channel
from loopkit.wechat import crypto, xml

SERVICES = ("identity", "acquisition", "conversion", "retention", "referral")
HOLD = timedelta(days=7)
OFFICIAL_ACCOUNT = "gh_closedloop_demo"


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def wait_for(check: Callable[[], Awaitable[Any]], timeout_s: float = 20.0) -> Any:
    """Poll until `check` answers something truthy (events take a moment to flow)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting after {timeout_s:.0f}s (last answer: {value!r})")
        await asyncio.sleep(0.1)


@dataclass(frozen=True)
class Funnel:
    """What the company configured: the ids later steps need."""

    campaign_id: str
    qr_channel_id: str
    qr_scene: str
    referral_channel_id: str
    page_id: str
    rep_ids: tuple[str, ...]
    program_id: str
    # The reps' WeCom user ids, in the order of rep_ids.
    rep_wecom_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class WechatApp:
    app_id: str
    token: str


@dataclass(frozen=True)
class WecomCorp:
    """A WeCom corp whose contact callbacks conversion receives (safe mode)."""

    corp_id: str
    token: str
    aes_key: str


# The H5 page's WeChat session cookie (acquisition signs it after web authorization).
SESSION_COOKIE = "cl_wechat"


class LoopClient:
    def __init__(
        self,
        tenant: str,
        grpc_targets: dict[str, str],
        http_urls: dict[str, str],
        wechat: WechatApp | None = None,
        wechat_emulator: str = "",
        *,
        wecom: WecomCorp | None = None,
        api_key: str | None = None,
    ) -> None:
        """`api_key`: what every call presents (`make run` keeps its development key in its
        state directory: loopkit.callers.developer_key)."""
        self.tenant = tenant
        self.wechat = wechat
        self.wecom = wecom
        # The WeChat emulator the gateway talks to: forms are then filled after WeChat sign-in.
        self.wechat_emulator = wechat_emulator
        self.channels = {name: keyed_channel(grpc_targets[name], api_key) for name in SERVICES}
        self.acquisition: Any = acquisition_pb2_grpc.AcquisitionServiceStub(  # type: ignore[no-untyped-call]
            self.channels["acquisition"]
        )
        self.conversion: Any = conversion_pb2_grpc.ConversionServiceStub(  # type: ignore[no-untyped-call]
            self.channels["conversion"]
        )
        self.retention: Any = retention_pb2_grpc.RetentionServiceStub(  # type: ignore[no-untyped-call]
            self.channels["retention"]
        )
        self.referral: Any = referral_pb2_grpc.ReferralServiceStub(  # type: ignore[no-untyped-call]
            self.channels["referral"]
        )
        self.acquisition_http = httpx.AsyncClient(base_url=http_urls["acquisition"], timeout=60)
        self.referral_http = httpx.AsyncClient(base_url=http_urls["referral"], timeout=60)
        self.conversion_http = httpx.AsyncClient(
            base_url=http_urls["conversion"],
            timeout=60,
            headers={"authorization": f"Bearer {api_key}"} if api_key else None,
        )
        # The WeChat API emulator `make run` starts (what WeChat was asked to do), if any.
        self.emulator = (
            httpx.AsyncClient(base_url=wechat_emulator, timeout=10, trust_env=False)
            if wechat_emulator
            else None
        )

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()
        for http in (self.acquisition_http, self.referral_http, self.conversion_http):
            await http.aclose()
        if self.emulator is not None:
            await self.emulator.aclose()

    # --- the company's set-up --------------------------------------------------------------

    async def set_up_funnel(self, now: datetime, *, reps: int = 1, app_id: str = "") -> Funnel:
        """A campaign with a temporary QR channel and a referral channel, a landing page, reps
        who get its leads in turn, and a referral program paying points after a hold."""
        t = self.tenant
        campaign = (
            await self.acquisition.CreateCampaign(
                acq.CreateCampaignRequest(tenant_id=t, name="Spring trial")
            )
        ).campaign
        scene = f"spring-{uuid.uuid4().hex[:6]}"
        qr = (
            await self.acquisition.CreateChannel(
                acq.CreateChannelRequest(
                    tenant_id=t,
                    channel=acq.Channel(
                        campaign_id=campaign.campaign_id,
                        name="Store poster QR",
                        kind=acq.CHANNEL_KIND_QR_TEMPORARY,
                        scene=scene,
                        expires_at=ts(now + timedelta(days=7)),
                        app_id=app_id,
                        owner_team="sales",
                    ),
                )
            )
        ).channel
        friends = (
            await self.acquisition.CreateChannel(
                acq.CreateChannelRequest(
                    tenant_id=t,
                    channel=acq.Channel(
                        campaign_id=campaign.campaign_id,
                        name="Friends bring friends",
                        kind=acq.CHANNEL_KIND_REFERRAL,
                        owner_team="sales",
                    ),
                )
            )
        ).channel
        page = (
            await self.acquisition.CreateLandingPage(
                acq.CreateLandingPageRequest(
                    tenant_id=t,
                    campaign_id=campaign.campaign_id,
                    channel_id=qr.channel_id,
                    title="Free trial",
                    # Inside WeChat the page signs the visitor in first (openid and unionid).
                    sign_in=acq.PAGE_SIGN_IN_USERINFO,
                    fields=[
                        acq.FormField(name="name", type=acq.FIELD_TYPE_NAME, required=True),
                        acq.FormField(name="phone", type=acq.FIELD_TYPE_PHONE, required=True),
                        acq.FormField(
                            name="agree",
                            type=acq.FIELD_TYPE_CONSENT,
                            required=True,
                            consent_wording="I agree to be contacted about the trial.",
                        ),
                    ],
                )
            )
        ).page
        rep_ids, rep_wecom_ids = [], []
        for n in range(reps):
            rep = await self.conversion.CreateRep(
                conv.CreateRepRequest(
                    tenant_id=t,
                    wecom_user_id=f"rep-{n}-{uuid.uuid4().hex[:6]}",
                    name=f"Rep {n}",
                    team="sales",
                    capacity=10_000,
                )
            )
            rep_ids.append(rep.rep.rep_id)
            rep_wecom_ids.append(rep.rep.wecom_user_id)
        await self.conversion.SetAssignmentRule(
            conv.SetAssignmentRuleRequest(
                tenant_id=t,
                rule=conv.AssignmentRule(
                    campaign_id=campaign.campaign_id,
                    kind=conv.ASSIGNMENT_RULE_KIND_ROUND_ROBIN,
                    team="sales",
                ),
            )
        )
        program = (
            await self.referral.CreateProgram(
                ref.CreateProgramRequest(
                    program=ref.Program(
                        tenant_id=t,
                        name="Bring a friend",
                        referrer_reward=ref.Reward(kind=refev.REWARD_KIND_POINTS, points=500),
                        trigger=ref.REWARD_TRIGGER_FIRST_PAID_ORDER,
                        levels=1,
                        hold_seconds=int(HOLD.total_seconds()),
                        attribution_window_seconds=30 * 86400,
                        channel_id=friends.channel_id,
                        campaign_id=campaign.campaign_id,
                        landing_url=f"https://h5.example.com/forms/{page.page_id}",
                    )
                )
            )
        ).program
        return Funnel(
            campaign.campaign_id,
            qr.channel_id,
            scene,
            friends.channel_id,
            page.page_id,
            tuple(rep_ids),
            program.program_id,
            tuple(rep_wecom_ids),
        )

    async def set_up_contact_way(self, funnel: Funnel, welcome_text: str) -> Any:
        """A WeCom "contact me" channel for the first rep, whose friend-adds get `welcome_text`
        (acquisition obtains the code from WeCom; conversion keeps the welcome)."""
        state = f"way-{uuid.uuid4().hex[:8]}"
        channel = (
            await self.acquisition.CreateChannel(
                acq.CreateChannelRequest(
                    tenant_id=self.tenant,
                    channel=acq.Channel(
                        campaign_id=funnel.campaign_id,
                        name="Add your adviser",
                        kind=acq.CHANNEL_KIND_WECOM_CONTACT_WAY,
                        state=state,
                        user_ids=[funnel.rep_wecom_ids[0]],
                        skip_verify=True,
                        owner_team="sales",
                    ),
                )
            )
        ).channel
        await self.conversion.SetContactWay(
            conv.SetContactWayRequest(
                tenant_id=self.tenant,
                state=state,
                channel_id=channel.channel_id,
                welcome_text=welcome_text,
            )
        )
        return channel

    # --- what customers do -----------------------------------------------------------------

    async def subscribe_by_callback(self, openid: str, *, scene: str = "", **headers: str) -> None:
        """The official account's server callback, signed as WeChat signs it (plaintext mode)."""
        assert self.wechat is not None, "subscribe_by_callback needs the official account's token"
        stamp, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
        body = xml.build_message(
            {
                "ToUserName": OFFICIAL_ACCOUNT,
                "FromUserName": openid,
                "CreateTime": int(stamp),
                "MsgType": "event",
                "Event": "subscribe",
                "EventKey": f"qrscene_{scene}" if scene else "",
            }
        )
        query = {
            "signature": crypto.signature(self.wechat.token, stamp, nonce),
            "timestamp": stamp,
            "nonce": nonce,
        }
        answer = await self.acquisition_http.post(
            f"/v1/wechat/{self.wechat.app_id}/callback",
            params=query,
            content=body.encode(),
            headers=headers,
        )
        answer.raise_for_status()

    async def scan(self, channel_id: str, openid: str, app_id: str) -> None:
        """A scan and subscribe recorded over gRPC (as a WeChat gateway of one's own would)."""
        who = c.Identity(kind=c.IDENTITY_KIND_WECHAT_OPENID, scope=app_id, value=openid)
        for kind in (acqev.TOUCH_KIND_SCAN, acqev.TOUCH_KIND_SUBSCRIBE):
            await self.acquisition.RecordTouch(
                acq.RecordTouchRequest(
                    tenant_id=self.tenant, channel_id=channel_id, kind=kind, identities=[who]
                )
            )

    async def submit_form(
        self,
        page_id: str,
        openid: str,
        app_id: str,
        phone: str,
        *,
        ref_code: str = "",
        channel_id: str = "",
        session: str = "",
        **headers: str,
    ) -> str:
        """The H5 form. With the WeChat emulator, the visitor opens the page in WeChat and is
        signed in as `openid` (web authorization) first, unless `session` (from
        `sign_in_with_wechat`) says they already are; without it, the openid goes along as a mere
        claim, which identity never trusts to choose the customer."""
        body: dict[str, Any] = {"values": {"name": "Li Lei", "phone": phone, "agree": "true"}}
        if ref_code:
            body["ref"] = ref_code
        if channel_id:  # the poster's link names its channel
            body["channel_id"] = channel_id
        if not session and self.wechat_emulator:
            session = await self.sign_in_with_wechat(page_id, openid, ref_code)
        if session:  # the visitor's browser cookie, sent with this request only
            headers = {**headers, "cookie": f"{SESSION_COOKIE}={session}"}
        else:
            body |= {"openid": openid, "app_id": app_id}
        answer = await self.acquisition_http.post(
            f"/v1/forms/{page_id}/submissions", json=body, headers=headers
        )
        if answer.status_code != 201:
            raise RuntimeError(f"form refused: {answer.status_code} {answer.text}")
        return str(answer.json()["lead_id"])

    async def sign_in_with_wechat(self, page_id: str, openid: str, ref_code: str = "") -> str:
        """Opens the H5 page in WeChat's browser as the emulator's person `openid`: the page sends
        the browser through WeChat's web authorization and back; returns the page's session."""
        base = str(self.acquisition_http.base_url)
        async with httpx.AsyncClient(base_url=base, timeout=10, trust_env=False) as browser:
            await self._sign_in(browser, page_id, openid, ref_code)
            return str(browser.cookies[SESSION_COOKIE])

    async def add_wecom_friend(
        self, rep_wecom_id: str, external_userid: str, *, state: str = "", welcome_code: str = ""
    ) -> None:
        """WeCom's add_external_contact callback to conversion, encrypted and signed as WeCom
        does it: the person added the rep through a contact-me code."""
        assert self.wecom is not None, "a WeCom friend-add needs the corp's callback keys"
        corp = self.wecom
        stamp, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
        fields: dict[str, str | int] = {
            "ToUserName": corp.corp_id,
            "FromUserName": "sys",
            "CreateTime": int(stamp),
            "MsgType": "event",
            "Event": "change_external_contact",
            "ChangeType": "add_external_contact",
            "UserID": rep_wecom_id,
            "ExternalUserID": external_userid,
            "State": state,
            "WelcomeCode": welcome_code,
        }
        sealed = crypto.MessageCrypto(corp.token, corp.aes_key, corp.corp_id).encrypt(
            xml.build_message(fields).encode()
        )
        answer = await self.conversion_http.post(
            f"/v1/wecom/{corp.corp_id}/callback",
            params={
                "msg_signature": crypto.signature(corp.token, stamp, nonce, sealed),
                "timestamp": stamp,
                "nonce": nonce,
            },
            content=xml.build_message({"ToUserName": corp.corp_id, "Encrypt": sealed}).encode(),
        )
        answer.raise_for_status()

    async def _sign_in(
        self, browser: httpx.AsyncClient, page_id: str, openid: str, ref_code: str
    ) -> None:
        """Open the page inside WeChat: to the authorize page (the emulator answers as `openid`)
        and back to the page, which sets the WeChat session cookie."""
        inside_wechat = {"user-agent": "Mozilla/5.0 MicroMessenger/8.0.50"}
        page = await browser.get(
            f"/p/{page_id}", params={"ref": ref_code} if ref_code else {}, headers=inside_wechat
        )
        if page.status_code != 302:
            raise RuntimeError(f"the page did not send us to WeChat: {page.status_code}")
        authorize = page.headers["location"].split("#", 1)[0]
        if not authorize.startswith(self.wechat_emulator):
            raise RuntimeError(f"sign-in goes elsewhere than the emulator: {authorize[:80]}")
        async with httpx.AsyncClient(timeout=10, trust_env=False) as wechat:
            back = await wechat.get(f"{authorize}&emulator_openid={openid}")
        signed = await browser.get(back.headers["location"], headers=inside_wechat)
        if signed.status_code != 303:
            raise RuntimeError(f"WeChat sign-in failed: {signed.status_code} {signed.text[:200]}")

    async def open_share_link(self, code: str, openid: str, app_id: str) -> httpx.Response:
        return await self.referral_http.get(
            f"/r/{code}", params={"openid": openid, "appid": app_id}, follow_redirects=False
        )

    async def referral_code(self, customer_id: str, program_id: str) -> str:
        answer = await self.referral.CreateReferralCode(
            ref.CreateReferralCodeRequest(
                tenant_id=self.tenant, customer_id=customer_id, program_id=program_id
            )
        )
        return str(answer.code)

    # --- what the company sees and does ----------------------------------------------------

    async def lead(self, lead_id: str) -> Any:
        answer = await self.acquisition.GetLead(
            acq.GetLeadRequest(tenant_id=self.tenant, lead_id=lead_id)
        )
        return answer.lead

    async def channel_stats(self, channel_id: str) -> Any:
        answer = await self.acquisition.GetChannelStats(
            acq.GetChannelStatsRequest(tenant_id=self.tenant, channel_id=channel_id)
        )
        return answer.stats

    async def assigned_lead(self, customer_id: str, timeout_s: float = 20.0) -> Any:
        async def assigned() -> Any:
            answer = await self.conversion.ListLeads(
                conv.ListLeadsRequest(tenant_id=self.tenant, customer_id=customer_id)
            )
            return next((lead for lead in answer.leads if lead.rep_id), None)

        return await wait_for(assigned, timeout_s)

    async def pay(self, customer_id: str, rep_id: str, lead_id: str, amount_fen: int) -> str:
        price = c.Money(currency="CNY", amount_minor=amount_fen)
        item = convev.OrderItem(sku="trial-pack", name="Trial pack", quantity=1, unit_price=price)
        order = await self.conversion.RecordOrder(
            conv.RecordOrderRequest(
                tenant_id=self.tenant,
                customer_id=customer_id,
                rep_id=rep_id,
                lead_id=lead_id,
                items=[item],
                amount=price,
            )
        )
        await self.conversion.MarkOrderPaid(
            conv.MarkOrderPaidRequest(tenant_id=self.tenant, order_id=order.order.order_id)
        )
        return str(order.order.order_id)

    async def stage(self, customer_id: str) -> int:
        answer = await self.retention.GetLifecycle(
            ret.GetLifecycleRequest(tenant_id=self.tenant, customer_id=customer_id)
        )
        return int(answer.stage)

    async def points(self, customer_id: str) -> int:
        answer = await self.retention.GetLoyaltyAccount(
            ret.GetLoyaltyAccountRequest(tenant_id=self.tenant, customer_id=customer_id)
        )
        return int(answer.balance)

    async def ownerships(self, customer_id: str) -> list[Any]:
        answer = await self.conversion.ListOwnerships(
            conv.ListOwnershipsRequest(tenant_id=self.tenant, customer_id=customer_id)
        )
        return list(answer.ownerships)

    async def broadcast(self, expression: str, text: str) -> Any:
        """A broadcast to a segment now, quiet hours off (so it goes out whatever the hour)."""
        await self.retention.SetLifecycleRules(
            ret.SetLifecycleRulesRequest(
                tenant_id=self.tenant,
                rules=ret.LifecycleRules(quiet_start="00:00", quiet_end="00:00"),
                fields=["quiet_start", "quiet_end"],
            )
        )
        answer = await self.retention.ScheduleBroadcast(
            ret.ScheduleBroadcastRequest(
                tenant_id=self.tenant, expression=expression, template=text
            )
        )
        return answer.broadcast

    async def broadcast_recipients(self, broadcast_id: str) -> list[Any]:
        answer = await self.retention.GetBroadcast(
            ret.GetBroadcastRequest(
                tenant_id=self.tenant, broadcast_id=broadcast_id, include_recipients=True
            )
        )
        return list(answer.recipients)

    async def wechat_calls(self, api: str) -> list[dict[str, Any]]:
        """What WeChat / WeCom was asked to do (the emulator's record)."""
        assert self.emulator is not None
        answer = await self.emulator.get("/emulator/calls", params={"api": api})
        answer.raise_for_status()
        calls: list[dict[str, Any]] = answer.json()
        return calls

    async def wechat_person(self, **fields: Any) -> None:
        """Someone WeChat knows (openid, unionid, WeCom external_userid), so web authorization
        and externalcontact/get answer consistently."""
        assert self.emulator is not None
        (await self.emulator.post("/emulator/users", json=fields)).raise_for_status()

    async def referral_of(self, newcomer_id: str) -> Any:
        try:
            answer = await self.referral.GetReferral(
                ref.GetReferralRequest(tenant_id=self.tenant, newcomer_customer_id=newcomer_id)
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return answer.referral

    async def rewards(self, beneficiary_id: str) -> list[Any]:
        answer = await self.referral.ListRewards(
            ref.ListRewardsRequest(tenant_id=self.tenant, beneficiary_customer_id=beneficiary_id)
        )
        return list(answer.rewards)

    async def release_rewards(self, as_of: datetime) -> int:
        answer = await self.referral.ReleaseDueRewards(
            ref.ReleaseDueRewardsRequest(tenant_id=self.tenant, as_of=ts(as_of))
        )
        return int(answer.granted)
