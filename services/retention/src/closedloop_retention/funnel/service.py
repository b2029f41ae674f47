"""Funnel use cases: record what the producers' events say about a customer's steps, follow
merges and erasures, and answer GetFunnel. They take a session and never commit."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Concatenate, ParamSpec

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.clock import utc
from closedloop_retention.funnel.repository import FunnelRepository
from closedloop_retention.funnel.views import Funnel, FunnelPeriod, FunnelQuery, Step
from loopkit.errors import InvalidArgument

MAX_RANGE = timedelta(days=400)
P = ParamSpec("P")
# Which of these customer ids retention erased (its lasting record, `c360_forgotten`).
Forgotten = Callable[[AsyncSession, str, Sequence[str]], Awaitable[set[str]]]


async def _nobody(session: AsyncSession, tenant: str, ids: Sequence[str]) -> set[str]:
    return set()


@dataclass(frozen=True)
class Source:
    """Where a customer came from, as a touch or a lead says."""

    campaign_id: str
    channel_id: str


def _check_range(q: FunnelQuery) -> datetime:
    start, end = utc(q.start), utc(q.end)
    if end <= start:
        raise InvalidArgument("`to` must be after `from`", field="to")
    if end - start > MAX_RANGE:
        raise InvalidArgument(f"the range is at most {MAX_RANGE.days} days", field="to")
    return start


def _settles(
    use_case: Callable[Concatenate[FunnelService, AsyncSession, P], Coroutine[Any, Any, None]],
) -> Callable[Concatenate[FunnelService, AsyncSession, P], Coroutine[Any, Any, None]]:
    """The use case, then the per-day rollup brought up to the step rows it changed (in the
    same transaction; last, so its row locks are held only until the commit)."""

    @functools.wraps(use_case)
    async def run(
        self: FunnelService, session: AsyncSession, /, *a: P.args, **kw: P.kwargs
    ) -> None:
        await use_case(self, session, *a, **kw)
        await self._rows.settle(session)

    return run


class FunnelService:
    def __init__(self, rows: FunnelRepository, *, forgotten: Forgotten = _nobody) -> None:
        self._rows = rows
        self._forgotten = forgotten

    # --- events in ---------------------------------------------------------------------------

    @_settles
    async def touched(
        self, session: AsyncSession, tenant: str, customer: str, at: datetime, source: Source
    ) -> None:
        live = await self._live(session, tenant, customer)
        if live is None:
            return
        await self._attribute(session, tenant, live, at, source)
        await self._step(session, tenant, live, Step.EXPOSED, at)
        await self._rows.refresh_gaps(session, tenant, live)

    @_settles
    async def lead_captured(
        self,
        session: AsyncSession,
        tenant: str,
        customer: str,
        at: datetime,
        source: Source,
        *,
        referrer: str = "",
    ) -> None:
        """A lead is also an exposure (some arrive without a recorded touch). A repeat
        submission is another event type and is not consumed: it is not a new lead."""
        live = await self._live(session, tenant, customer)
        if live is None:
            return
        await self._attribute(session, tenant, live, at, source)
        await self._step(session, tenant, live, Step.EXPOSED, at)
        await self._step(session, tenant, live, Step.LEAD, at)
        if referrer:
            await self._referred(session, tenant, live, referrer, at)
        await self._rows.refresh_gaps(session, tenant, live)

    @_settles
    async def lead_assigned(
        self, session: AsyncSession, tenant: str, customer: str, at: datetime
    ) -> None:
        live = await self._live(session, tenant, customer)
        if live is not None:
            await self._step(session, tenant, live, Step.ASSIGNED, at)
            await self._rows.refresh_gaps(session, tenant, live)

    @_settles
    async def order_paid(
        self, session: AsyncSession, tenant: str, customer: str, order_id: str, at: datetime
    ) -> None:
        live = await self._live(session, tenant, customer)
        if live is None:
            return
        source = await self._rows.source(session, tenant, live)
        await self._rows.add_order(
            session,
            tenant,
            live,
            order_id,
            at,
            campaign_id=source.campaign_id if source else "",
            channel_id=source.channel_id if source else "",
        )
        await self._step(session, tenant, live, Step.FIRST_PAID, at)
        await self._repeat(session, tenant, live)
        await self._rows.refresh_gaps(session, tenant, live)

    @_settles
    async def referral_converted(
        self, session: AsyncSession, tenant: str, newcomer: str, referrer: str, at: datetime
    ) -> None:
        """The referral service's verdict: this newcomer, referred by `referrer`, paid."""
        live = await self._live(session, tenant, newcomer)
        if live is None:
            return
        await self._referred(session, tenant, live, referrer, at)
        await self._step(session, tenant, live, Step.REFERRED_PAID, at)

    @_settles
    async def merge(
        self, session: AsyncSession, tenant: str, survivor: str, gone: str, merge_id: str = ""
    ) -> None:
        """`gone`'s steps move to the survivor, each keeping its earliest time; their orders add
        up (which may make the survivor a repeat buyer); later events for `gone` follow. What
        changed is kept under `merge_id` for its unmerge."""
        if survivor == gone:
            return
        for customer in sorted((survivor, gone)):  # one order everywhere: no deadlock between two
            await self._rows.lock(session, tenant, customer)
        erased = await self._forgotten(session, tenant, [survivor, gone])
        erased |= {
            c for c in (survivor, gone) if await self._rows.resolve(session, tenant, c) is None
        }
        if erased:
            # One of them was forgotten, by the funnel or by retention (whose record outlasts a
            # rebuild after the identity stream aged the customer.forgotten out): the merged
            # customer's rows go as an erased customer's do, rather than come back under a
            # forgotten survivor, and later events of either add nothing.
            await self._erase(session, tenant, sorted({gone} | erased))
            return
        await self._rows.alias(session, tenant, gone, survivor)
        before = await self._steps_at(session, tenant, survivor)
        survivor_source = await self._source_of(session, tenant, survivor)
        gone_rows = await self._rows.steps_of(session, tenant, gone)
        undo: dict[str, Any] = {
            "steps": {r.step: [_iso(r.at), r.campaign_id, r.channel_id] for r in gone_rows},
            "source": await self._source_of(session, tenant, gone),
            "orders": await self._rows.order_ids_of(session, tenant, gone),
        }
        found = await self._rows.source(session, tenant, gone)
        moved = None if found is None else (found.at, Source(found.campaign_id, found.channel_id))
        steps = [(Step(row.step), row.at) for row in gone_rows]
        await self._rows.move_orders(session, tenant, gone, survivor)
        await self._rows.erase(session, tenant, [gone])
        if moved is not None:
            await self._attribute(session, tenant, survivor, *moved)
        for step, at in steps:
            await self._step(session, tenant, survivor, step, at)
        await self._repeat(session, tenant, survivor)
        await self._rows.refresh_gaps(session, tenant, survivor)
        if merge_id:
            after = await self._steps_at(session, tenant, survivor)
            undo["survivor_steps"] = {
                step: [before.get(step), at] for step, at in after.items() if before.get(step) != at
            }
            now_source = await self._source_of(session, tenant, survivor)
            undo["survivor_source"] = (
                None if now_source == survivor_source else [survivor_source, now_source]
            )
            await self._rows.save_merge(
                session, tenant, merge_id, merged=gone, survivor=survivor, undo=undo
            )

    @_settles
    async def unmerge(
        self,
        session: AsyncSession,
        tenant: str,
        restored: str,
        survivor: str = "",
        merge_id: str = "",
    ) -> None:
        """Later events for `restored` count for it again, and what the merge `merge_id` folded
        into `survivor` (the live customer holding it now) comes back: the restored customer's
        own steps, attribution and orders; the survivor's steps and attribution as they were
        before, unless events since moved them (then they stay); repeat buyers recounted from
        the orders each now has. A merge recorded before the read model kept merge records
        (or a replay that finds none) only drops the alias."""
        ids = {restored, survivor} - {""}
        for customer in sorted(ids):
            await self._rows.lock(session, tenant, customer)
        await self._rows.unalias(session, tenant, restored)
        record = await self._rows.take_merge(session, tenant, merge_id) if merge_id else None
        if record is None or record.merged_id != restored:
            return
        holder = survivor or record.survivor_id
        undo = record.undo
        await self._rows.give_back_orders(session, tenant, undo["orders"], holder, restored)
        source = undo["source"]
        await self._rows.put_source(session, tenant, restored, _source(source))
        for step, (at, campaign, channel) in undo["steps"].items():
            await self._rows.record_step(
                session, tenant, restored, step, _time(at), campaign_id=campaign, channel_id=channel
            )
        if holder != restored:
            current = await self._steps_at(session, tenant, holder)
            for step, (prior, set_at) in undo.get("survivor_steps", {}).items():
                if current.get(step) != set_at:
                    continue  # an event since moved it: it stands
                if prior is None:
                    await self._rows.delete_step(session, tenant, holder, step)
                else:
                    await self._rows.set_step_at(session, tenant, holder, step, _time(prior))
            changed = undo.get("survivor_source")
            if changed is not None and await self._source_of(session, tenant, holder) == changed[1]:
                await self._rows.put_source(session, tenant, holder, _source(changed[0]))
        for customer in sorted({restored, holder}):
            await self._rows.delete_step(session, tenant, customer, Step.REPEAT.value)
            await self._repeat(session, tenant, customer)
            await self._rows.refresh_gaps(session, tenant, customer)

    async def _steps_at(self, session: AsyncSession, tenant: str, customer: str) -> dict[str, str]:
        return {r.step: _iso(r.at) for r in await self._rows.steps_of(session, tenant, customer)}

    async def _source_of(
        self, session: AsyncSession, tenant: str, customer: str
    ) -> list[str] | None:
        row = await self._rows.source(session, tenant, customer)
        return None if row is None else [_iso(row.at), row.campaign_id, row.channel_id]

    @_settles
    async def forget(self, session: AsyncSession, tenant: str, ids: Sequence[str]) -> None:
        for customer in sorted(ids):
            await self._rows.lock(session, tenant, customer)
        await self._erase(session, tenant, ids)

    async def _erase(self, session: AsyncSession, tenant: str, ids: Sequence[str]) -> None:
        """Their rows and merge records go, and later events of theirs add nothing (their
        locks held)."""
        await self._rows.erase(session, tenant, ids)
        await self._rows.forget_merges(session, tenant, ids)
        for customer in ids:
            await self._rows.alias(session, tenant, customer, "")

    async def reset(self, session: AsyncSession, consumers: Sequence[str]) -> None:
        await self._rows.reset(session, consumers)

    # --- the figures -------------------------------------------------------------------------

    async def funnel(self, session: AsyncSession, q: FunnelQuery) -> Funnel:
        start = _check_range(q)
        customers: dict[datetime | None, dict[str, int]] = defaultdict(dict)
        medians: dict[datetime | None, dict[str, float]] = defaultdict(dict)
        for period, step, n, median in await self._rows.step_figures(session, q):
            customers[period][step] = n
            if median is not None:
                medians[period][step] = median
        orders = dict(await self._rows.order_counts(session, q))
        starts = sorted({p for p in customers if p is not None} | set(orders))
        periods = [
            FunnelPeriod(
                start=p,
                customers=customers.get(p, {}),
                paid_orders=orders.get(p, 0),
                median_s=medians.get(p, {}),
            )
            for p in starts
        ]
        total = FunnelPeriod(
            start=start,
            customers=customers.get(None, {}),
            paid_orders=sum(orders.values()),
            median_s=medians.get(None, {}),
        )
        return Funnel(periods=periods, total=total)

    async def tenant_steps(
        self, session: AsyncSession, start: datetime, end: datetime, max_tenants: int
    ) -> tuple[dict[str, dict[str, int]], int]:
        """Unique customers per step who reached it in [start, end), for each of the busiest
        `max_tenants` tenants (every step present, 0 when none), and how many tenants had any
        step in the range (more than `max_tenants`: the rest are left out)."""
        rows, tenants = await self._rows.tenant_step_counts(session, start, end, max_tenants)
        found: dict[str, dict[str, int]] = {}
        for tenant, step, n in rows:
            found.setdefault(tenant, {s.value: 0 for s in Step})[step] = n
        return found, tenants

    async def cohorts(self, session: AsyncSession, q: FunnelQuery) -> list[FunnelPeriod]:
        """Weekly cohorts by first exposure; each counts its customers' steps at any time."""
        _check_range(q)
        found: dict[datetime, dict[str, int]] = defaultdict(dict)
        for week, step, n in await self._rows.cohort_counts(session, q):
            found[week][step] = n
        return [
            FunnelPeriod(
                start=week,
                customers={k: v for k, v in found[week].items() if k != "paid_orders"},
                paid_orders=found[week].get("paid_orders", 0),
            )
            for week in sorted(found)
        ]

    # --- helpers -----------------------------------------------------------------------------

    async def _live(self, session: AsyncSession, tenant: str, customer: str) -> str | None:
        """The live id an event of `customer` counts for (following merges), or None when the
        customer was forgotten: by the funnel's own erasure (its alias, which `resolve` waits
        for under the funnel's lock) or by retention's, whose record outlasts a rebuild that
        the identity stream no longer holds the customer.forgotten for. Read without retention's
        lock: an erasure committing meanwhile is followed by the funnel's own, which takes the
        funnel's lock and erases what this event adds."""
        live = await self._rows.resolve(session, tenant, customer)
        if live is None or await self._forgotten(session, tenant, [customer, live]):
            return None
        if live != customer:
            # The survivor's rows change too: under its lock, as its own events' do, or two
            # transactions could both count the same change in the rollup.
            await self._rows.lock(session, tenant, live)
        return live

    async def _attribute(
        self, session: AsyncSession, tenant: str, customer: str, at: datetime, source: Source
    ) -> None:
        if source.campaign_id or source.channel_id:
            await self._rows.set_source(
                session,
                tenant,
                customer,
                at,
                campaign_id=source.campaign_id,
                channel_id=source.channel_id,
            )

    async def _step(
        self, session: AsyncSession, tenant: str, customer: str, step: Step, at: datetime
    ) -> None:
        source = await self._rows.source(session, tenant, customer)
        await self._rows.record_step(
            session,
            tenant,
            customer,
            step.value,
            at,
            campaign_id=source.campaign_id if source else "",
            channel_id=source.channel_id if source else "",
        )

    async def _referred(
        self, session: AsyncSession, tenant: str, newcomer: str, referrer: str, at: datetime
    ) -> None:
        sponsor = await self._live(session, tenant, referrer) if referrer else None
        if sponsor == newcomer:
            return  # a self-referral (perhaps revealed by a merge) refers nobody
        await self._step(session, tenant, newcomer, Step.REFERRED, at)
        if sponsor is not None:
            await self._step(session, tenant, sponsor, Step.REFERRER, at)

    async def _repeat(self, session: AsyncSession, tenant: str, customer: str) -> None:
        second = await self._rows.second_order_at(session, tenant, customer)
        if second is not None:
            await self._step(session, tenant, customer, Step.REPEAT, second)


def _iso(at: datetime) -> str:
    return utc(at).isoformat()


def _time(iso: str) -> datetime:
    return utc(datetime.fromisoformat(iso))


def _source(kept: list[str] | None) -> tuple[datetime, str, str] | None:
    return None if kept is None else (_time(kept[0]), kept[1], kept[2])
