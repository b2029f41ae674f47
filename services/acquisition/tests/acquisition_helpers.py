"""Builders for acquisition tests: the running services, API shortcuts, and WeChat callbacks
signed and encrypted by wechatpy (an implementation we did not write)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import xmltodict
from google.protobuf.timestamp_pb2 import Timestamp
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

from closedloop.acquisition.v1 import acquisition_pb2 as pb
from closedloop.acquisition.v1 import acquisition_pb2_grpc
from closedloop.common.v1 import common_pb2 as c
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop.identity.v1 import identity_pb2, identity_pb2_grpc
from gateway_helpers import Emulator
from loopkit import pii
from loopkit.identity_client import IdentityClient
from loopkit_dev.testing import PostgresServer, RunningService

TOKEN = "callback-token-1"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OFFICIAL_ACCOUNT = "gh_0123456789ab"
# What the acquisition under the gateway tests signs its sign-in cookies with.
SESSION_SECRET = "test-session-secret-0123456789"
# WeChat's in-app browser on a phone (web authorization works only there).
WECHAT_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50 NetType/WIFI Language/zh_CN"
)


def app_ids(slot: int) -> tuple[str, str]:
    """The safe-mode and the plaintext official account of a test slot."""
    return f"wxsafe{slot:012d}", f"wxplain{slot:011d}"


@dataclass
class Env:
    identity: RunningService | None
    acquisition: RunningService
    tenant: str
    # The tenant's official accounts: one in safe mode (AES), one in plaintext mode.
    app_id: str
    plain_app_id: str

    def callback(self, safe: bool = True) -> str:
        return f"/v1/wechat/{self.app_id if safe else self.plain_app_id}/callback"

    @property
    def stub(self) -> acquisition_pb2_grpc.AcquisitionServiceStub:
        return acquisition_pb2_grpc.AcquisitionServiceStub(self.acquisition.channel)

    @property
    def identity_stub(self) -> identity_pb2_grpc.IdentityServiceStub:
        assert self.identity is not None
        return identity_pb2_grpc.IdentityServiceStub(self.identity.channel)

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.acquisition.http_url, timeout=60)

    async def opened(self, env: Envelope) -> Envelope:
        """The event with its sealed personal values opened, as a consumer that reads them does
        (loopkit.pii), with the keys of the identity under test."""
        assert self.identity is not None
        keys = pii.CachedKeys(IdentityClient(self.identity.channel))
        await pii.Opener(keys).open(env)
        return env

    async def campaign(self, name: str = "Spring launch") -> pb.Campaign:
        answer = await self.stub.CreateCampaign(
            pb.CreateCampaignRequest(tenant_id=self.tenant, name=name, goal_leads=100)
        )
        return answer.campaign

    async def channel(self, campaign_id: str, **fields: object) -> pb.Channel:
        channel = pb.Channel(campaign_id=campaign_id, **fields)  # type: ignore[arg-type]
        if not channel.name:
            channel.name = "channel"
        answer = await self.stub.CreateChannel(
            pb.CreateChannelRequest(tenant_id=self.tenant, channel=channel)
        )
        return answer.channel

    async def qr_channel(
        self, campaign_id: str, scene: str, *, expires_in_s: int = 3600, **fields: object
    ) -> pb.Channel:
        return await self.channel(
            campaign_id,
            name=f"QR {scene}",
            kind=pb.CHANNEL_KIND_QR_TEMPORARY,
            scene=scene,
            expires_at=at(datetime.now(UTC) + timedelta(seconds=expires_in_s)),
            app_id=self.app_id,
            **fields,
        )

    async def page(self, campaign_id: str, channel_id: str = "") -> pb.LandingPage:
        answer = await self.stub.CreateLandingPage(
            pb.CreateLandingPageRequest(
                tenant_id=self.tenant,
                campaign_id=campaign_id,
                channel_id=channel_id,
                title="Free trial",
                fields=[
                    pb.FormField(name="name", type=pb.FIELD_TYPE_NAME, required=True),
                    pb.FormField(name="phone", type=pb.FIELD_TYPE_PHONE, required=True),
                    pb.FormField(name="note", type=pb.FIELD_TYPE_TEXT, max_length=20),
                    pb.FormField(
                        name="agree",
                        type=pb.FIELD_TYPE_CONSENT,
                        required=True,
                        consent_wording="I agree to be contacted about the trial.",
                    ),
                ],
            )
        )
        return answer.page

    async def customer_of(self, identity: c.Identity) -> identity_pb2.Customer | None:
        answer = await self.identity_stub.SearchCustomers(
            identity_pb2.SearchCustomersRequest(
                tenant_id=self.tenant, kind=identity.kind, value=identity.value
            )
        )
        return answer.customers[0] if answer.customers else None

    async def stats(self, channel_id: str) -> pb.ChannelStats:
        answer = await self.stub.GetChannelStats(
            pb.GetChannelStatsRequest(tenant_id=self.tenant, channel_id=channel_id)
        )
        return answer.stats


@dataclass
class WechatSlot:
    """A tenant of its own with an official account and a WeCom corp in the gateway."""

    env: Env
    app_id: str
    corp_id: str
    wechat: Emulator
    gateway: RunningService


async def sign_in(
    http: httpx.AsyncClient, page_id: str, openid: str, query: str = ""
) -> httpx.Response:
    """A visitor opening the page in WeChat: to the emulator's authorize page (as `openid`) and
    back; the client then holds the page's WeChat session cookie."""
    wechat_browser = {"user-agent": WECHAT_UA}
    start = await http.get(f"/p/{page_id}" + (f"?{query}" if query else ""), headers=wechat_browser)
    assert start.status_code == 302, start.text
    authorize = start.headers["location"].split("#", 1)[0]
    async with httpx.AsyncClient(trust_env=False) as wechat:
        back = await wechat.get(f"{authorize}&emulator_openid={openid}")
    assert back.status_code == 302, back.text
    done = await http.get(back.headers["location"], headers=wechat_browser)
    assert done.status_code == 303, done.text
    return done


async def database(request: pytest.FixtureRequest, backend: str, tmp: Path, name: str) -> str:
    if backend == "postgres":
        pg: PostgresServer = request.getfixturevalue("postgres")
        return await pg.fresh_database()
    return f"sqlite+aiosqlite:///{tmp}/{name}.db"


def at(moment: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(moment)
    return ts


def openid(value: str, app: str) -> c.Identity:
    return c.Identity(kind=c.IDENTITY_KIND_WECHAT_OPENID, scope=app, value=value)


def phone(value: str) -> c.Identity:
    return c.Identity(kind=c.IDENTITY_KIND_PHONE, value=value)


def form(name: str = "Li Lei", phone_number: str = "13800138000", **more: str) -> dict[str, str]:
    return {"name": name, "phone": phone_number, "agree": "true", **more}


# --- WeChat callbacks, built with wechatpy -------------------------------------------------


def event_xml(from_user: str, event: str, *, key: str = "", create_time: int | None = None) -> str:
    created = create_time if create_time is not None else int(time.time())
    return (
        f"<xml><ToUserName><![CDATA[{OFFICIAL_ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{from_user}]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[{key}]]></EventKey></xml>"
    )


def text_xml(from_user: str, content: str, msg_id: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{OFFICIAL_ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{from_user}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


def signed_query(token: str = TOKEN, *, timestamp: int | None = None) -> dict[str, str]:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    nonce = uuid.uuid4().hex[:10]
    signer = WeChatSigner()
    signer.add_data(token, ts, nonce)
    return {"signature": signer.signature, "timestamp": ts, "nonce": nonce}


def plain_post(xml: str, *, timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
    """(query, body) of a plaintext callback, signed like WeChat signs it."""
    return signed_query(timestamp=timestamp), xml.encode()


def safe_post(
    xml: str, app_id: str, *, timestamp: int | None = None
) -> tuple[dict[str, str], bytes]:
    """(query, body) of a safe-mode callback, encrypted and signed by wechatpy."""
    crypto = WeChatCrypto(TOKEN, AES_KEY, app_id)
    ts = str(timestamp if timestamp is not None else int(time.time()))
    nonce = uuid.uuid4().hex[:10]
    envelope = crypto.encrypt_message(xml, nonce, ts)
    fields = xmltodict.parse(envelope)["xml"]
    query = {
        "timestamp": ts,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": fields["MsgSignature"],
        "signature": signed_query(timestamp=int(ts))["signature"],
    }
    body = (
        f"<xml><ToUserName><![CDATA[{OFFICIAL_ACCOUNT}]]></ToUserName>"
        f"<Encrypt><![CDATA[{fields['Encrypt']}]]></Encrypt></xml>"
    )
    return query, body.encode()


def open_safe_reply(reply: str, app_id: str) -> str:
    """The plaintext of an encrypted passive reply, checked and decrypted by wechatpy."""
    crypto = WeChatCrypto(TOKEN, AES_KEY, app_id)
    fields = xmltodict.parse(reply)["xml"]
    return str(
        crypto.decrypt_message(reply, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"])
    )
