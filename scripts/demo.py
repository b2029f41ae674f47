"""`make demo`: synthetic customers through the whole loop of a running platform, then the funnel.

Start the platform first (`make run`, another terminal). The demo configures a campaign of its own
(a fresh tenant each run), sends a few hundred people through scan → lead → sales → payment →
repurchase → referral through the public APIs only, and prints the TLSRRR funnel as the services
themselves report it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import grpc

from closedloop.acquisition.v1 import acquisition_pb2 as acq
from closedloop.conversion.v1 import conversion_pb2 as conv
from closedloop.referral.v1 import referral_pb2 as ref
from loop_client import SERVICES, Funnel, LoopClient
from loopkit.runner import load_services, settings_for

APP_ID = "wx-demo-app"


def targets() -> tuple[dict[str, str], dict[str, str]]:
    """Where `make run` serves each service (the same env overrides apply)."""
    grpc_targets, http_urls = {}, {}
    for service, definition in load_services():
        settings = settings_for(definition)
        grpc_targets[service.name] = f"{settings.grpc_host}:{settings.grpc_port}"
        http_urls[service.name] = f"http://{settings.http_host}:{settings.http_port}"
    return grpc_targets, http_urls


class Demo:
    def __init__(self, client: LoopClient, funnel: Funnel, rng: random.Random) -> None:
        self.client = client
        self.funnel = funnel
        self.rng = rng
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
            # Without WeChat sign-in the form's openid is only a claim and cannot tie the lead
            # to the scan; the poster's link names its channel, so the lead is still credited.
            lead_id = await self.client.submit_form(
                self.funnel.page_id,
                openid,
                APP_ID,
                phone,
                ref_code=referral_code,
                channel_id="" if referral_code else self.funnel.qr_channel_id,
            )
            self.counts["leads"] += 1
            self.counts["referred leads" if referral_code else "direct leads"] += 1
            customer = str((await self.client.lead(lead_id)).customer_id)
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

    async def run(self, people: int) -> None:
        payers = await asyncio.gather(*(self.person(n) for n in range(people)))
        referrers = [p for p in payers if p is not None and self.rng.random() < 0.4]
        codes = [await self.client.referral_code(r, self.funnel.program_id) for r in referrers]
        await asyncio.gather(
            *(self.person(people + i, referral_code=code) for i, code in enumerate(codes))
        )
        self.counts["referrers"] = len(referrers)


async def report(client: LoopClient, funnel: Funnel, counts: Counter[str]) -> None:
    tenant = client.tenant
    stats = (
        await client.acquisition.GetChannelStats(
            acq.GetChannelStatsRequest(tenant_id=tenant, campaign_id=funnel.campaign_id)
        )
    ).stats
    reps = (await client.conversion.GetRepReport(conv.GetRepReportRequest(tenant_id=tenant))).reps
    program = await client.referral.GetProgramStats(
        ref.GetProgramStatsRequest(tenant_id=tenant, program_id=funnel.program_id)
    )
    assigned = sum(r.leads_assigned for r in reps)
    paid = sum(r.orders_paid for r in reps)
    revenue = sum(r.won_revenue.amount_minor for r in reps) / 100
    repeat = counts["repeat buyers"]

    def rate(part: float, whole: float) -> str:
        return f"{part / whole:6.1%}" if whole else "     -"

    print(f"\nTLSRRR funnel of tenant {tenant} (as the services report it)")
    rows: list[tuple[str, Any, str]] = [
        ("T  scans + share visits", stats.scans + stats.visits, ""),
        ("L  leads", stats.leads, rate(stats.leads, stats.scans + stats.visits)),
        ("S  assigned to a rep", assigned, rate(assigned, stats.leads)),
        ("S  orders paid", paid, rate(counts["paid"], assigned)),
        ("R  repeat buyers", repeat, rate(repeat, counts["paid"])),
        ("R  referrers (codes made)", program.codes, rate(program.codes, counts["paid"])),
        ("R  referred newcomers", program.referrals, rate(program.referrals, program.codes)),
        ("R  referred who paid", program.converted, rate(program.converted, program.referrals)),
    ]
    for label, value, conversion in rows:
        print(f"  {label:<28} {value:>6}  {conversion}")
    share = rate(counts["referred leads"], stats.leads)
    print(f"  referral share of new leads  {share}")
    print(f"  viral coefficient            {program.viral_coefficient:6.2f}")
    print(f"  revenue won (CNY)            {revenue:>9.2f}")


async def main(people: int, seed: int) -> int:
    grpc_targets, http_urls = targets()
    missing = [s for s in SERVICES if s not in grpc_targets]
    if missing:
        print(f"services.toml does not list {missing}; the demo needs all five", file=sys.stderr)
        return 2
    tenant = f"demo-{datetime.now(UTC):%Y%m%d%H%M%S}"
    client = LoopClient(tenant, grpc_targets, http_urls)
    try:
        funnel = await client.set_up_funnel(datetime.now(UTC), reps=3, app_id=APP_ID)
        demo = Demo(client, funnel, random.Random(seed))
        print(f"driving {people} synthetic people through the loop (tenant {tenant}) ...")
        await demo.run(people)
        await report(client, funnel, demo.counts)
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
