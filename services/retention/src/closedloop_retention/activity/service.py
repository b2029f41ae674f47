"""The activity model: a row per customer kept from other services' events, the lifecycle stage
and churn risk recomputed from it, and the reads of it. Callers own the transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop.events.v1 import retention_events_pb2 as ev
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop_retention import metrics
from closedloop_retention.activity import lifecycle, review_sql, value
from closedloop_retention.activity.repository import ActivityRepository, ReviewFacts
from closedloop_retention.activity.rules import Rules, RulesRepository
from closedloop_retention.activity.views import (
    ActivityView,
    CustomerActivity,
    Lifecycle,
    StageChangeView,
    ValueView,
)
from closedloop_retention.clock import utc, utc_or_none
from closedloop_retention.models import ActivityRow, StageChangeRow
from loopkit import tracing
from loopkit.errors import NotFound
from loopkit.events import Outbox
from loopkit.ids import new_ulid
from loopkit.timestamps import to_timestamp
from loopkit.uow import on_commit
from loopkit.views import view_of

STAGE_PB = {
    lifecycle.INVESTIGATION: ev.LIFECYCLE_STAGE_INVESTIGATION,
    lifecycle.DEVELOPMENT: ev.LIFECYCLE_STAGE_DEVELOPMENT,
    lifecycle.STABLE: ev.LIFECYCLE_STAGE_STABLE,
    lifecycle.DECLINE: ev.LIFECYCLE_STAGE_DECLINE,
    lifecycle.CHURNED: ev.LIFECYCLE_STAGE_CHURNED,
}

# A full review's batch (after a rules change): each its own transaction, holding the row locks
# of the customers it rewrites for a fraction of a second.
REVIEW_BATCH = 5_000


@dataclass
class _Written:
    """A sweep batch's stage_changes rows and events; the trace context and the events' time
    are read once for the batch (per event they cost more than building the event)."""

    changes: list[dict[str, Any]]
    events: list[Envelope]
    carrier: dict[str, str]
    occurred_at: Timestamp

    @classmethod
    def now(cls) -> _Written:
        return cls([], [], tracing.current_context_headers(), to_timestamp(datetime.now(UTC)))


@dataclass(frozen=True)
class ReviewStep:
    """One batch of a full review: customers reviewed, stage changes, whether it was the last."""

    examined: int
    changed: int
    finished: bool


# (session, tenant, activity row, rules, now): the win-back playbook when churn risk is raised;
# True when an offer was made.
WinBack = Callable[[AsyncSession, str, ActivityRow, Rules, datetime], Awaitable[bool]]


def facts(row: ActivityRow | ReviewFacts) -> lifecycle.Facts:
    return lifecycle.Facts(
        order_count=row.order_count,
        first_order_at=utc_or_none(row.first_order_at),
        last_order_at=utc_or_none(row.last_order_at),
        last_seen_at=utc(row.last_seen_at),
        unsubscribed=row.unsubscribed,
        deleted_rep=row.deleted_rep,
        win_back_attempts=row.win_back_attempts or 0,
        last_win_back_at=utc_or_none(row.last_win_back_at),
    )


class ActivityService:
    def __init__(
        self,
        outbox: Outbox,
        rules: RulesRepository,
        win_back: WinBack | None = None,
        repository: ActivityRepository | None = None,
        on_review_wanted: Callable[[], None] | None = None,
    ):
        self._outbox = outbox
        self._rules = rules
        self.win_back = win_back
        self._repo = repository or ActivityRepository()
        # Called after a rules change commits: wakes the worker that reviews the customers.
        self.on_review_wanted = on_review_wanted

    # --- reading -----------------------------------------------------------------------------

    async def get(self, session: AsyncSession, tenant: str, customer_id: str) -> ActivityRow:
        row = await self._repo.find(session, tenant, customer_id)
        if row is None:
            raise NotFound("no activity known for this customer", field="customer_id")
        return row

    async def tags(self, session: AsyncSession, tenant: str, customer_id: str) -> list[str]:
        return await self._repo.tags(session, tenant, customer_id)

    async def activity_of(
        self, session: AsyncSession, tenant: str, customer_id: str
    ) -> CustomerActivity:
        row = await self.get(session, tenant, customer_id)
        tags = await self.tags(session, tenant, customer_id)
        cycle = lifecycle.purchase_cycle_days(facts(row))
        return CustomerActivity(view_of(ActivityView, row), tags, cycle)

    async def lifecycle_of(self, session: AsyncSession, tenant: str, customer_id: str) -> Lifecycle:
        row = await self.get(session, tenant, customer_id)
        history = await self._repo.history(session, tenant, customer_id)
        changes = [StageChangeView(h.from_stage, h.to_stage, h.reason, h.at) for h in history]
        return Lifecycle(row.stage, row.stage_reason, changes)

    async def value_of(self, session: AsyncSession, tenant: str, customer_id: str) -> ValueView:
        return view_of(ValueView, await self.get(session, tenant, customer_id))

    async def top_customers(
        self, session: AsyncSession, tenant: str, limit: int, *, recompute: bool
    ) -> list[ValueView]:
        """The top 20% by revenue, best first; `recompute` scores the tenant afresh first."""
        if recompute:
            await value.recompute_rfm(session, tenant)
        return [view_of(ValueView, r) for r in await value.top_customers(session, tenant, limit)]

    async def tag(
        self,
        session: AsyncSession,
        tenant: str,
        customer_id: str,
        *,
        add: Sequence[str],
        remove: Sequence[str],
        at: datetime,
    ) -> list[str]:
        """Manual tags added and removed; the customer's tags after."""
        await self.touch(session, tenant, customer_id, at)
        await self.add_tags(session, tenant, customer_id, add, "manual")
        await self.remove_tags(session, tenant, customer_id, remove)
        return await self.tags(session, tenant, customer_id)

    async def set_rules(
        self, session: AsyncSession, tenant: str, changes: dict[str, object], at: datetime
    ) -> Rules:
        """The tenant's rules changed: stored with a marker asking for every customer to be
        reviewed under them, which the background sweep does in batches (`review_step`); no
        customer's row is written here (at 1M customers the review takes seconds)."""
        updated = (await self._rules.get(session, tenant)).updated(changes)
        await self._rules.put(session, tenant, updated)
        await self._rules.want_review(session, tenant, utc(at))
        if self.on_review_wanted is not None:
            on_commit(session, self.on_review_wanted)
        return updated

    async def reviews_wanted(self, session: AsyncSession) -> list[str]:
        """The tenants whose rules changed and whose customers wait for their review."""
        return await self._rules.reviews_wanted(session)

    async def review_step(
        self, session: AsyncSession, tenant: str, at: datetime, *, batch: int = REVIEW_BATCH
    ) -> ReviewStep | None:
        """The next keyset batch of the tenant's full review under its changed rules, in the
        caller's transaction (one per batch: a batch's row locks last milliseconds); the
        position is stored with the marker, so a review cut off resumes where it stopped, and
        the marker is cleared after the last batch. None when no review is wanted or another
        process is running a batch of it (its rules row is locked)."""
        marker = await self._rules.claim_review(session, tenant)
        if marker is None:
            return None
        rules, now = Rules.from_json(marker.rules), utc(at)
        if session.get_bind().dialect.name == "postgresql":
            done = await self._sql_batch(
                session, "every", tenant, now, rules, after=(None, marker.review_after), limit=batch
            )
            size, changed = done.size, done.changes
            last = done.after[1] if done.after else ""
        else:
            rows = await self._repo.facts_after(session, tenant, marker.review_after, batch)
            size, changed = len(rows), await self._review_rows(session, tenant, rows, rules, now)
            last = rows[-1].customer_id if rows else ""
        finished = size < batch
        marker.review_after = "" if finished else last
        if finished:
            marker.review_wanted_at = None
        await session.flush()
        return ReviewStep(size, changed, finished)

    async def tenants(self, session: AsyncSession) -> list[str]:
        return await self._repo.tenants(session)

    async def sweep_and_score(self, session: AsyncSession, tenant: str, at: datetime) -> int:
        """The periodic round of a tenant: due stages and churn risk, then RFM scores; returns
        the stage changes."""
        _, changed = await self.sweep(session, tenant, at)
        await value.recompute_rfm(session, tenant)
        return changed

    # --- the activity model --------------------------------------------------------------------

    async def touch(
        self, session: AsyncSession, tenant: str, customer_id: str, at: datetime
    ) -> ActivityRow:
        """The customer's row (created on first sight), last seen moved to `at`."""
        at = utc(at)
        row = await self._repo.find(session, tenant, customer_id)
        created = False
        if row is None:
            # Two consumers (acquisition's and conversion's events) may see a new customer at
            # once: the insert yields to the other's row instead of failing on the key.
            row, created = await self._repo.add_unless_present(
                session,
                ActivityRow(
                    tenant_id=tenant,
                    customer_id=customer_id,
                    first_seen_at=at,
                    last_seen_at=at,
                    order_count=0,
                    revenue_minor=0,
                    referrals_made=0,
                    unsubscribed=False,
                    deleted_rep=False,
                    consent=False,
                    channel_id="",
                    channel_kind="",
                    owner_rep_id="",
                    contact_kind="",
                    contact_scope="",
                    contact_value="",
                    active_hours=[0] * 24,
                    stage=lifecycle.INVESTIGATION,
                    stage_reason="",
                    churn_risk=0.0,
                    next_review_at=at,
                    win_back_attempts=0,
                ),
            )
        if created:
            await self._record_change(
                session, row, "", lifecycle.INVESTIGATION, reason="first seen", at=at
            )
            row.stage_reason = "known customer, no order yet"
            row.stage_changed_at = at
        else:
            if at > utc(row.last_seen_at):
                row.last_seen_at = at
            if at < utc(row.first_seen_at):
                row.first_seen_at = at
        return row

    async def add_tags(
        self, session: AsyncSession, tenant: str, customer_id: str, tags: Sequence[str], source: str
    ) -> None:
        existing = set(await self.tags(session, tenant, customer_id))
        for tag in dict.fromkeys(t.strip() for t in tags):
            if tag and tag not in existing and len(tag) <= 64:
                self._repo.add_tag(session, tenant, customer_id, tag, source)
        await session.flush()

    async def remove_tags(
        self, session: AsyncSession, tenant: str, customer_id: str, tags: Sequence[str]
    ) -> None:
        if tags:
            await self._repo.remove_tags(session, tenant, customer_id, tags)

    # --- lifecycle --------------------------------------------------------------------------

    async def recompute(
        self, session: AsyncSession, row: ActivityRow, now: datetime, rules: Rules | None = None
    ) -> bool:
        """Re-assess the stage and churn risk; emits stage.changed / churn_risk.raised."""
        rules = rules or await self._rules.get(session, row.tenant_id)
        f = lifecycle.returned(facts(row))
        if f.last_win_back_at is None and row.last_win_back_at is not None:
            row.win_back_attempts, row.last_win_back_at = 0, None  # they came back
        verdict = lifecycle.review(f, row.churn_risk_raised_at is not None, rules, utc(now))
        changed = verdict.stage != row.stage
        if changed:
            await self._record_change(
                session, row, row.stage, verdict.stage, reason=verdict.reason, at=now
            )
            row.stage = verdict.stage
            row.stage_changed_at = utc(now)
        row.stage_reason = verdict.reason
        row.next_review_at = verdict.next_review_at
        row.churn_risk = lifecycle.rounded_risk(verdict.churn_risk)
        if verdict.raise_risk:
            row.churn_risk_raised_at = utc(now)
            await self._outbox.add(
                session,
                self._risk_raised(
                    row.tenant_id, row.customer_id, verdict.churn_risk, verdict.risk_reasons
                ),
            )
        elif verdict.clear_risk:
            row.churn_risk_raised_at = None
        offered = (
            verdict.offer
            and self.win_back is not None
            and await self.win_back(session, row.tenant_id, row, rules, now)
        )
        if offered:
            row.win_back_attempts = (row.win_back_attempts or 0) + 1
            row.last_win_back_at = utc(now)
            row.next_review_at = lifecycle.next_review(facts(row), rules, utc(now))
        return changed

    def _risk_raised(
        self,
        tenant: str,
        customer_id: str,
        score: float,
        reasons: list[str],
        batch: _Written | None = None,
    ) -> Envelope:
        return self._outbox.envelope(
            "churn_risk.raised",
            tenant_id=tenant,
            customer_id=customer_id,
            payload=ev.ChurnRiskRaised(score=score, reasons=reasons),
            occurred_at=batch.occurred_at if batch else None,
            carrier=batch.carrier if batch else None,
        )

    def _stage_change(
        self,
        tenant: str,
        customer_id: str,
        old: str,
        new: str,
        *,
        reason: str,
        at: datetime,
        batch: _Written | None = None,
    ) -> tuple[dict[str, Any], Envelope]:
        """The stage_changes row and the stage.changed event of one change."""
        change = {
            "id": new_ulid(),
            "tenant_id": tenant,
            "customer_id": customer_id,
            "from_stage": old,
            "to_stage": new,
            "reason": reason[:300],
            "at": utc(at),
        }
        event = self._outbox.envelope(
            "stage.changed",
            tenant_id=tenant,
            customer_id=customer_id,
            payload=ev.StageChanged(
                from_stage=STAGE_PB.get(old, ev.LIFECYCLE_STAGE_UNSPECIFIED),
                to_stage=STAGE_PB[new],
                reason=reason,
            ),
            occurred_at=batch.occurred_at if batch else None,
            carrier=batch.carrier if batch else None,
        )
        return change, event

    def _batch_change(
        self,
        session: AsyncSession,
        into: _Written,
        tenant: str,
        customer_id: str,
        *,
        old: str,
        new: str,
        reason: str,
        at: datetime,
    ) -> None:
        """A sweep's stage change: its row and event added to the batch's, counted at commit."""
        change, event = self._stage_change(
            tenant, customer_id, old, new, reason=reason, at=at, batch=into
        )
        into.changes.append(change)
        into.events.append(event)
        on_commit(session, partial(metrics.stage_changes.add, 1, {"to_stage": new}))

    async def _write_batch(self, session: AsyncSession, batch: _Written) -> None:
        """A batch's stage_changes rows and events, one INSERT each (one array per column)."""
        await self._repo.add_changes(session, batch.changes)
        await self._outbox.add_many(session, batch.events)

    async def _record_change(
        self,
        session: AsyncSession,
        row: ActivityRow,
        old: str,
        new: str,
        *,
        reason: str,
        at: datetime,
    ) -> None:
        change, event = self._stage_change(
            row.tenant_id, row.customer_id, old, new, reason=reason, at=at
        )
        self._repo.add_change(session, StageChangeRow(**change))
        await self._outbox.add(session, event)
        on_commit(session, lambda: metrics.stage_changes.add(1, {"to_stage": new}))

    async def sweep(
        self,
        session: AsyncSession,
        tenant: str,
        now: datetime,
        *,
        batch: int | None = None,
        every: bool = False,
    ) -> tuple[int, int]:
        """Review the customers of a tenant whose review moment has come (`every`: all of them,
        as after a rules change): time passing moves stable customers into decline, and so on.
        Returns (customers examined, stage changes).

        PostgreSQL: one statement per keyset batch computes the reviews in SQL
        (activity/review_sql.py) and writes only due rows and changed decisions; Python builds
        the stage changes and events of the few customers whose stage changed or whose risk was
        raised. SQLite: the rules in Python per batch (`sweep_in_python`). Either way a customer
        due a win-back offer goes through `recompute` (the playbook decides per row).
        """
        if session.get_bind().dialect.name == "postgresql":
            return await self._sweep_in_sql(session, tenant, utc(now), batch, every=every)
        if every:
            await self._repo.review_all(session, tenant, utc(now))
        return await self.sweep_in_python(session, tenant, now, batch=batch or 500)

    async def _sweep_in_sql(
        self, session: AsyncSession, tenant: str, now: datetime, batch: int | None, *, every: bool
    ) -> tuple[int, int]:
        rules = await self._rules.get(session, tenant)
        if every:
            # One read-only pass over the tenant finds who changes; only they are written.
            examined, ids = await review_sql.changing(
                session, tenant, now, rules, win_back=self.win_back is not None
            )
            limit, changed = batch or 5_000, 0
            for start in range(0, len(ids), limit):
                chunk = ids[start : start + limit]
                done = await self._sql_batch(
                    session, "ids", tenant, now, rules, after=None, limit=len(chunk), ids=chunk
                )
                changed += done.changes
            return examined, changed
        mode, limit = "due", batch or 2_000
        examined = changed = 0
        after: tuple[datetime | None, str] | None = None
        while True:
            done = await self._sql_batch(
                session, mode, tenant, now, rules, after=after, limit=limit
            )
            if not done.size:
                break
            examined += done.size
            changed += done.changes
            after = done.after
            if done.size < limit:
                break
        return examined, changed

    async def _sql_batch(
        self,
        session: AsyncSession,
        mode: str,
        tenant: str,
        now: datetime,
        rules: Rules,
        *,
        after: tuple[datetime | None, str] | None,
        limit: int,
        ids: list[str] | None = None,
    ) -> review_sql.Batch:
        """One keyset batch reviewed in SQL, its stage changes, events and offers written;
        `changes` of the batch set to its stage changes."""
        done = await review_sql.review_batch(
            session,
            mode,
            tenant,
            now,
            rules,
            after=after,
            limit=limit,
            win_back=self.win_back is not None,
            ids=ids,
        )
        if not done.size:
            return done
        # Rows of this session's identity map read the statement's writes afresh.
        for obj in list(session.identity_map.values()):
            key = sa_inspect(obj).identity
            if isinstance(obj, ActivityRow) and key is not None and key[0] == tenant:
                session.expire(obj)
        written = _Written.now()
        for row in done.changed:
            # The stage and its reason as the statement computed them; a raised risk's
            # reasons (the event's) from the Python rules on the same facts.
            if row.stage_changed:
                done.changes += 1
                self._batch_change(
                    session,
                    written,
                    tenant,
                    row.customer_id,
                    old=row.stage,
                    new=row.new_stage,
                    reason=row.new_reason,
                    at=now,
                )
            if row.raise_risk:
                _, reasons = lifecycle.churn_risk(lifecycle.returned(facts(row)), rules, now)
                written.events.append(
                    self._risk_raised(tenant, row.customer_id, row.score, reasons, written)
                )
        await self._write_batch(session, written)
        for customer_id in done.offers:
            one = await self.get(session, tenant, customer_id)
            done.changes += await self.recompute(session, one, now, rules)
        return done

    async def sweep_in_python(
        self, session: AsyncSession, tenant: str, now: datetime, *, batch: int
    ) -> tuple[int, int]:
        """The sweep with the rules in Python (SQLite's; PostgreSQL's before the set-based
        review, kept for bench/segments.py's before/after). Per batch: one SELECT of the due
        rows' facts, the rules in Python, then one UPDATE of the batch's rows and one INSERT
        each for its stage changes and events."""
        rules = await self._rules.get(session, tenant)
        now = utc(now)
        examined = changed = 0
        # Keyset over the review index; a recomputed row moves its moment into the future (or
        # clears it), so it leaves the due range by itself.
        after: tuple[datetime, str] | None = None
        while True:
            rows = await self._repo.due_for_review(session, tenant, now, after, batch)
            if not rows:
                break
            last = rows[-1]
            assert last.next_review_at is not None
            after = (last.next_review_at, last.customer_id)
            examined += len(rows)
            changed += await self._review_rows(session, tenant, rows, rules, now)
        return examined, changed

    async def _review_rows(
        self,
        session: AsyncSession,
        tenant: str,
        rows: list[ReviewFacts],
        rules: Rules,
        now: datetime,
    ) -> int:
        """The rules in Python on a batch of customers' facts: one UPDATE of the batch's rows,
        one INSERT each for its stage changes and events; returns the stage changes."""
        changed = 0
        updates: list[dict[str, Any]] = []
        written = _Written.now()
        for row in rows:
            f = lifecycle.returned(facts(row))
            risk_raised = row.churn_risk_raised_at is not None
            verdict = lifecycle.review(f, risk_raised, rules, now)
            if verdict.offer and self.win_back is not None:
                one = await self.get(session, tenant, row.customer_id)
                changed += await self.recompute(session, one, now, rules)
                continue
            raised_at = utc_or_none(row.churn_risk_raised_at)
            if verdict.raise_risk:
                raised_at = now
            elif verdict.clear_risk:
                raised_at = None
            came_back = f.last_win_back_at is None and row.last_win_back_at is not None
            update = {
                "customer_id": row.customer_id,
                "stage": verdict.stage,
                "stage_reason": verdict.reason,
                "stage_changed_at": utc_or_none(row.stage_changed_at),
                "next_review_at": verdict.next_review_at,
                "churn_risk": lifecycle.rounded_risk(verdict.churn_risk),
                "churn_risk_raised_at": raised_at,
                "win_back_attempts": 0 if came_back else row.win_back_attempts,
                "last_win_back_at": None if came_back else utc_or_none(row.last_win_back_at),
            }
            if verdict.stage != row.stage:
                changed += 1
                update["stage_changed_at"] = now
                self._batch_change(
                    session,
                    written,
                    tenant,
                    row.customer_id,
                    old=row.stage,
                    new=verdict.stage,
                    reason=verdict.reason,
                    at=now,
                )
            if verdict.raise_risk:
                written.events.append(
                    self._risk_raised(
                        tenant, row.customer_id, verdict.churn_risk, verdict.risk_reasons, written
                    )
                )
            updates.append(update)
        await self._repo.update_reviewed(session, tenant, updates)
        await self._write_batch(session, written)
        return changed
