"""`make demo`: synthetic customers through the whole loop of a running platform, then the funnel.

Start the platform first (`make run`, another terminal). The demo configures a campaign of its own
for the tenant `make run` gives WeChat accounts (`demo`), sends a few hundred people through scan →
lead → sales → payment → repurchase → referral through the public APIs only, and prints the
TLSRRR funnel as the services themselves report it.

With the gateway and its WeChat emulator running (as `make run` starts them), WeChat is really
asked: the QR channel gets its ticket and a contact-me channel its code, people sign in on the
page through WeChat web authorization, some add their adviser on WeCom (one customer with their
follower record through WeChat's unionid, and a welcome message), and a broadcast goes out through
the official account. What WeChat was asked is counted from the emulator's record.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx

from closedloop.acquisition.v1 import acquisition_pb2 as acq
from closedloop.retention.v1 import retention_pb2 as ret
from loop_client import SERVICES, Funnel, LoopClient, WecomCorp, ts, wait_for
from loopkit import emulated_accounts as accounts
from loopkit.callers import developer_key
from loopkit_dev.runner import DEFAULT_EMULATOR_PORT, load_services, settings_for

APP_ID = accounts.APP_ID
CORP = WecomCorp(accounts.CORP_ID, accounts.CORP_TOKEN, accounts.AES_KEY)
BROADCAST = "Spring sale: 20% off your next trial pack this week."


def targets() -> tuple[dict[str, str], dict[str, str]]:
    """Where `make run` serves each service (the same env overrides apply)."""
    grpc_targets, http_urls = {}, {}
    for service, definition in load_services():
        settings = settings_for(definition)
        grpc_targets[service.name] = f"{settings.grpc_host}:{settings.grpc_port}"
        http_urls[service.name] = f"http://{settings.http_host}:{settings.http_port}"
    return grpc_targets, http_urls


def emulator_url(grpc_targets: dict[str, str]) -> str:
    """The WeChat emulator `make run` starts with the gateway, if it answers."""
    if "gateway" not in grpc_targets:
        return ""
    url = f"http://127.0.0.1:{os.environ.get('CLOSEDLOOP_EMULATOR_PORT', DEFAULT_EMULATOR_PORT)}"
    try:
        httpx.get(f"{url}/emulator/calls", params={"api": "-"}, timeout=5, trust_env=False)
    except httpx.HTTPError:
        return ""
    return url


class Demo:
    def __init__(
        self, client: LoopClient, funnel: Funnel, rng: random.Random, way: Any = None
    ) -> None:
        self.client = client
        self.funnel = funnel
        self.rng = rng
        # The contact-me channel (with the gateway): people add their adviser on WeCom.
        self.way = way
        self.counts: Counter[str] = Counter()
        # Gentle: `make run` keeps each service on SQLite, one writer at a time.
        self.gate = asyncio.Semaphore(4)

    async def person(self, n: int, referral_code: str = "") -> str | None:
        """One person's path; returns their customer id if they became a lead."""
        openid = f"o-demo-{uuid.uuid4().hex[:12]}"
        phone = f"139{n:08d}"
        async with self.gate:
            if referral_code:
                await self.client.open_share_link(referral_code, openid, APP_ID)
            else:
                await self.client.scan(self.funnel.qr_channel_id, openid, APP_ID)
            self.counts["touched"] += 1
            if not referral_code and self.rng.random() > 0.6:
                return None  # looked, left no details
            session = await self.sign_in(openid, referral_code)
            # Without WeChat sign-in the form's openid is only a claim and cannot tie the lead
            # to the scan; the poster's link names its channel, so the lead is still credited.
            lead_id = await self.client.submit_form(
                self.funnel.page_id,
                openid,
                APP_ID,
                phone,
                ref_code=referral_code,
                channel_id="" if referral_code else self.funnel.qr_channel_id,
                session=session,
            )
            self.counts["leads"] += 1
            self.counts["referred leads" if referral_code else "direct leads"] += 1
            customer = str((await self.client.lead(lead_id)).customer_id)
            if self.way is not None and self.rng.random() < 0.5:
                await self.add_adviser(openid, customer)
        sales_lead = await self.client.assigned_lead(customer, timeout_s=60)
        self.counts["assigned"] += 1
        if self.rng.random() > 0.45:
            return None
        async with self.gate:
            await self.client.pay(customer, sales_lead.rep_id, sales_lead.lead_id, 19_900)
            self.counts["paid"] += 1
            if self.rng.random() < 0.25:
                await self.client.pay(customer, sales_lead.rep_id, sales_lead.lead_id, 9_900)
                self.counts["repeat buyers"] += 1
        return customer

    async def sign_in(self, openid: str, referral_code: str) -> str:
        """Inside WeChat the page signs the person in (WeChat knows them by a unionid)."""
        if self.way is None:
            return ""
        await self.client.wechat_person(app_id=APP_ID, openid=openid, unionid=f"u-{openid}")
        session = await self.client.sign_in_with_wechat(self.funnel.page_id, openid, referral_code)
        self.counts["signed in through WeChat"] += 1
        return session

    async def add_adviser(self, openid: str, customer: str) -> None:
        """The person adds their adviser through the contact-me code: WeCom's record of the
        contact carries their unionid, so the WeCom friend is the same customer."""
        external_userid = f"wm-{openid}"
        adviser = self.funnel.rep_wecom_ids[0]
        await self.client.wechat_person(
            corp_id=CORP.corp_id,
            external_userid=external_userid,
            unionid=f"u-{openid}",
            follow_userids=[adviser],
        )
        await self.client.add_wecom_friend(
            adviser,
            external_userid,
            state=self.way.state,
            welcome_code=f"WC-{uuid.uuid4().hex[:12]}",
        )
        self.counts["WeCom friends"] += 1
        owned = await self.client.ownerships(customer)
        if any(o.external_userid == external_userid for o in owned):
            self.counts["WeCom friends known as the customer"] += 1

    async def run(self, people: int) -> None:
        payers = await asyncio.gather(*(self.person(n) for n in range(people)))
        referrers = [p for p in payers if p is not None and self.rng.random() < 0.4]
        codes = [await self.client.referral_code(r, self.funnel.program_id) for r in referrers]
        await asyncio.gather(
            *(self.person(people + i, referral_code=code) for i, code in enumerate(codes))
        )
        self.counts["referrers"] = len(referrers)
        if self.way is not None:
            sale = await self.client.broadcast("consent = true AND unsubscribed = false", BROADCAST)
            self.counts["broadcast recipients"] = sale.stats.recipients

            async def dispatched() -> bool:
                answer = await self.client.retention.GetBroadcast(
                    ret.GetBroadcastRequest(
                        tenant_id=self.client.tenant, broadcast_id=sale.broadcast_id
                    )
                )
                return bool(answer.broadcast.status == ret.BROADCAST_STATUS_COMPLETED)

            await wait_for(dispatched, timeout_s=120)
            done = await self.client.retention.GetBroadcast(
                ret.GetBroadcastRequest(
                    tenant_id=self.client.tenant, broadcast_id=sale.broadcast_id
                )
            )
            stats = done.broadcast.stats
            self.counts["broadcast handed to the gateway"] = stats.sent
            self.counts["broadcast refused"] = stats.failed
            self.counts["broadcast skipped"] = stats.skipped


async def report(client: LoopClient, since: datetime, counts: Counter[str], started: float) -> None:
    """The funnel as retention's GetFunnel reports it (unique customers per step, counted once
    each), once its read model has seen every lead and payer of this run."""
    tenant = client.tenant
    request = ret.GetFunnelRequest(tenant_id=tenant, to=ts(datetime.now(UTC) + timedelta(hours=1)))
    getattr(request, "from").CopyFrom(ts(since))

    async def caught_up() -> Any:
        found = await client.retention.GetFunnel(request)
        steps = found.total.steps
        done = steps.leads >= counts["leads"] and steps.first_paid >= counts["paid"]
        return found if done else None

    total = (await wait_for(caught_up)).total
    steps, rates, medians = total.steps, total.rates, total.medians
    print(f"\nTLSRRR funnel of tenant {tenant} since {since:%H:%M:%S} UTC (GetFunnel)")
    rows: list[tuple[str, int, float | None]] = [
        ("T  exposed (touch or lead)", steps.exposed, None),
        ("L  leads", steps.leads, rates.exposed_to_lead),
        ("S  assigned to a rep", steps.assigned, rates.lead_to_assigned),
        ("S  first paid order", steps.first_paid, rates.assigned_to_first_paid),
        ("R  repeat buyers", steps.repeat_buyers, rates.first_paid_to_repeat),
        ("R  referrers", steps.referrers, None),
        ("R  referred newcomers", steps.referred_newcomers, None),
        ("R  referred who paid", steps.referred_paid, rates.referred_to_paid),
    ]
    for label, value, rate in rows:
        print(f"  {label:<28} {value:>6}  {'' if rate is None else f'{rate:6.1%}'}")
    print(f"  paid orders                  {steps.paid_orders:>6}")
    print(f"  referral share of new leads  {rates.referral_share_of_leads:6.1%}")
    print(f"  viral coefficient            {rates.viral_coefficient:6.2f}")
    print(f"  median lead → assigned       {medians.lead_to_assigned_s:8.1f} s")
    print(f"  median assigned → first paid {medians.assigned_to_first_paid_s:8.1f} s")
    if client.emulator is not None:
        await report_wechat(client, counts, started)


async def report_wechat(client: LoopClient, counts: Counter[str], started: float) -> None:
    """What WeChat was asked during this run, from the emulator's record."""

    async def calls(api: str, **match: Any) -> int:
        found = await client.wechat_calls(api)
        return sum(
            1
            for c in found
            if c["at"] >= started
            and c.get("errcode", 0) == 0
            and all(c["body"].get(k) == v for k, v in match.items())
        )

    async def broadcast_delivered() -> bool:
        delivered = await calls("message/custom/send", msgtype="text") + await calls(
            "externalcontact/add_msg_template"
        )
        return delivered >= counts["broadcast handed to the gateway"]

    # The gateway sends what it was handed at its own (quota-paced) speed.
    with contextlib.suppress(TimeoutError):
        await wait_for(broadcast_delivered, timeout_s=120)
    rows = [
        ("QR codes made", await calls("qrcode/create")),
        ("contact-me codes made", await calls("externalcontact/add_contact_way")),
        ("web sign-ins (codes exchanged)", await calls("sns/oauth2/access_token")),
        ("WeCom friends", counts["WeCom friends"]),
        ("  one customer with the fan", counts["WeCom friends known as the customer"]),
        ("welcome messages sent", await calls("externalcontact/send_welcome_msg")),
        ("broadcast recipients", counts["broadcast recipients"]),
        ("  handed to the gateway", counts["broadcast handed to the gateway"]),
        ("  refused (e.g. no 48 h window)", counts["broadcast refused"]),
        ("  skipped (consent, caps, hours)", counts["broadcast skipped"]),
        ("  official-account texts sent", await calls("message/custom/send", msgtype="text")),
        ("  reps' 1:1 messages (WeCom)", await calls("externalcontact/add_msg_template")),
    ]
    assert client.emulator is not None
    where = f"{str(client.emulator.base_url).rstrip('/')}/emulator/calls"
    print(f"\nWeChat, as the emulator saw it ({where})")
    for label, value in rows:
        print(f"  {label:<32} {value:>6}")


async def main(people: int, seed: int) -> int:
    grpc_targets, http_urls = targets()
    missing = [s for s in SERVICES if s not in grpc_targets]
    if missing:
        print(f"services.toml does not list {missing}; the demo needs all five", file=sys.stderr)
        return 2
    tenant = accounts.TENANT
    wechat = emulator_url(grpc_targets)
    # The development key `make run` made and kept in its state directory.
    state_dir = Path(os.environ.get("CLOSEDLOOP_STATE_DIR", ".closedloop"))
    client = LoopClient(
        tenant,
        grpc_targets,
        http_urls,
        wechat_emulator=wechat,
        wecom=CORP,
        api_key=developer_key(state_dir),
    )
    started = time.time()
    try:
        funnel = await client.set_up_funnel(datetime.now(UTC), reps=3, app_id=APP_ID)
        way = None
        if wechat:
            way = await client.set_up_contact_way(funnel, "Hi! I am your trial adviser.")
            qr = await client.acquisition.GetChannel(
                acq.GetChannelRequest(tenant_id=tenant, channel_id=funnel.qr_channel_id)
            )
            print(f"QR channel ticket from WeChat: {qr.channel.code.ticket or '(none)'}")
            print(f"contact-me code from WeCom:    {way.code.image_url or '(none)'}")
        else:
            print("no WeChat emulator answering: nothing is sent to WeChat (sandbox senders)")
        demo = Demo(client, funnel, random.Random(seed), way)
        print(f"driving {people} synthetic people through the loop (tenant {tenant}) ...")
        since = datetime.now(UTC)
        await demo.run(people)
        await report(client, since, demo.counts, started)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNAVAILABLE and "connect" in (exc.details() or ""):
            print("the platform is not running: start `make run` first", file=sys.stderr)
            return 2
        print(f"the platform refused a call: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    finally:
        await client.close()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.people, args.seed)))
