"""Every query of the customer 360 tables (c360_leads, c360_followups, c360_orders,
c360_referrals, c360_rewards, c360_timeline, c360_forgotten). Writes are upserts keyed by the
event's natural key, so an event applied twice changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_retention.clock import utc
from closedloop_retention.customer360.views import Entry, LeadFacts
from closedloop_retention.models import (
    C360EventRow,
    C360FollowUpRow,
    C360ForgottenRow,
    C360LeadRow,
    C360OrderRow,
    C360ReferralRow,
    C360RewardRow,
)
from loopkit.customer_rows import repoint_customer, set_aside
from loopkit.db import conflict_insert

# Tables whose customer_id column names the customer the row is about.
_OWNED: tuple[type[Any], ...] = (
    C360LeadRow,
    C360FollowUpRow,
    C360OrderRow,
    C360RewardRow,
    C360EventRow,
)


def _looked_up(session: AsyncSession) -> dict[tuple[str, str], bool]:
    """Whether each (tenant, customer) looked up in the session's current transaction was
    forgotten; a new transaction starts with none. A savepoint counts as a transaction of its
    own: rolled back, it releases the locks taken in it, and with them what was looked up."""
    transaction = session.get_nested_transaction() or session.get_transaction()
    memo = session.info.get("c360_forgotten")
    if memo is None or memo[0] is not transaction:
        memo = session.info["c360_forgotten"] = (transaction, {})
    looked_up: dict[tuple[str, str], bool] = memo[1]
    return looked_up


# Transaction-scoped locks of customer ids, taken in one order (sorted) so two takers never
# deadlock on each other; the subquery's ORDER BY sets the order they are taken in.
_LOCK = text(
    "SELECT pg_advisory_xact_lock(hashtextextended(k, 0))"
    " FROM (SELECT unnest(CAST(:keys AS text[])) AS k ORDER BY 1) AS keys"
)


class Customer360Repository:
    # --- writes -----------------------------------------------------------------------------

    async def add_entry(
        self, session: AsyncSession, tenant: str, customer: str, entry: Entry
    ) -> None:
        stmt = conflict_insert(session, C360EventRow).values(
            tenant_id=tenant,
            entry_key=entry.key[:200],
            customer_id=customer,
            kind=entry.kind,
            service=entry.service,
            at=utc(entry.at),
            summary=entry.summary[:300],
            ref=entry.ref[:64],
        )
        await session.execute(
            stmt.on_conflict_do_nothing(index_elements=["tenant_id", "entry_key"])
        )

    async def lead_captured(
        self, session: AsyncSession, tenant: str, customer: str, lead: LeadFacts, at: datetime
    ) -> None:
        """The lead's attribution (a lead.assigned handled first made the row already)."""
        facts = {
            "campaign_id": lead.campaign_id,
            "channel_id": lead.channel_id,
            "channel_kind": lead.channel_kind,
            "referrer_customer_id": lead.referrer_id,
            "referral_code": lead.referral_code,
            "captured_at": utc(at),
        }
        stmt = conflict_insert(session, C360LeadRow).values(
            tenant_id=tenant, lead_id=lead.lead_id, customer_id=customer, rep_id="", **facts
        )
        await session.execute(
            stmt.on_conflict_do_update(index_elements=["tenant_id", "lead_id"], set_=facts)
        )

    async def lead_assigned(  # noqa: PLR0917 - the assignment's facts
        self,
        session: AsyncSession,
        tenant: str,
        customer: str,
        lead_id: str,
        rep_id: str,
        at: datetime,
    ) -> None:
        """The lead's rep, unless a later assignment was already recorded (events can arrive out
        of order; the latest assignment wins)."""
        values = {"rep_id": rep_id, "assigned_at": utc(at)}
        stmt = conflict_insert(session, C360LeadRow).values(
            tenant_id=tenant,
            lead_id=lead_id,
            customer_id=customer,
            campaign_id="",
            channel_id="",
            channel_kind="",
            referrer_customer_id="",
            referral_code="",
            **values,
        )
        table = C360LeadRow.__table__
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "lead_id"],
                set_=values,
                where=or_(table.c.assigned_at.is_(None), table.c.assigned_at <= utc(at)),
            )
        )

    async def add_followup(self, session: AsyncSession, row: C360FollowUpRow) -> None:
        values = {c.name: getattr(row, c.name) for c in C360FollowUpRow.__table__.columns}
        stmt = conflict_insert(session, C360FollowUpRow).values(values)
        await session.execute(
            stmt.on_conflict_do_nothing(index_elements=["tenant_id", "follow_up_id"])
        )

    async def add_order(self, session: AsyncSession, row: C360OrderRow) -> None:
        values = {c.name: getattr(row, c.name) for c in C360OrderRow.__table__.columns}
        stmt = conflict_insert(session, C360OrderRow).values(values)
        await session.execute(stmt.on_conflict_do_nothing(index_elements=["tenant_id", "order_id"]))

    async def refund_order(
        self, session: AsyncSession, tenant: str, order_id: str, refunded_minor: int, full: bool
    ) -> None:
        """The order's refunded total (never lowered: refunds only add up)."""
        row = C360OrderRow
        larger = func.max if session.get_bind().dialect.name == "sqlite" else func.greatest
        values: dict[str, Any] = {"refunded_minor": larger(row.refunded_minor, refunded_minor)}
        if full:
            values["fully_refunded"] = True
        await session.execute(
            update(row).where(row.tenant_id == tenant, row.order_id == order_id).values(values)
        )

    async def referred(  # noqa: PLR0917 - the referral's facts
        self,
        session: AsyncSession,
        tenant: str,
        newcomer: str,
        referrer: str,
        code: str,
        at: datetime,
        *,
        referral_id: str = "",
        converted: bool = False,
    ) -> None:
        """Who referred a newcomer: the first referrer named stays; a conversion marks it."""
        table = C360ReferralRow.__table__
        stmt = conflict_insert(session, C360ReferralRow).values(
            tenant_id=tenant,
            newcomer_id=newcomer,
            referrer_id=referrer,
            code=code,
            referred_at=utc(at),
            referral_id=referral_id,
            converted_at=utc(at) if converted else None,
        )
        excluded = stmt.excluded
        keep_first = table.c.referred_at <= excluded.referred_at
        set_: dict[str, Any] = {
            "referred_at": func.min(table.c.referred_at, excluded.referred_at)
            if session.get_bind().dialect.name == "sqlite"
            else func.least(table.c.referred_at, excluded.referred_at),
            "referrer_id": _first_non_empty(table.c.referrer_id, excluded.referrer_id, keep_first),
            "code": _first_non_empty(table.c.code, excluded.code, keep_first),
        }
        if converted:
            set_["referral_id"] = excluded.referral_id
            set_["converted_at"] = func.coalesce(table.c.converted_at, excluded.converted_at)
        await session.execute(
            stmt.on_conflict_do_update(index_elements=["tenant_id", "newcomer_id"], set_=set_)
        )

    async def reward_granted(self, session: AsyncSession, row: C360RewardRow) -> None:
        values = {c.name: getattr(row, c.name) for c in C360RewardRow.__table__.columns}
        values.pop("revoked_at")
        stmt = conflict_insert(session, C360RewardRow).values(values)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "reward_id"],
                set_={k: v for k, v in values.items() if k not in ("tenant_id", "reward_id")},
            )
        )

    async def reward_revoked(  # noqa: PLR0917 - the revocation's facts
        self,
        session: AsyncSession,
        tenant: str,
        customer: str,
        reward_id: str,
        kind: str,
        at: datetime,
    ) -> None:
        """Marks the reward taken back (kept as a row without a grant time if it came first)."""
        stmt = conflict_insert(session, C360RewardRow).values(
            tenant_id=tenant,
            reward_id=reward_id,
            customer_id=customer,
            referral_id="",
            kind=kind,
            points=0,
            coupon_template_id="",
            level=0,
            granted_at=None,
            revoked_at=utc(at),
        )
        table = C360RewardRow.__table__
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id", "reward_id"],
                set_={"revoked_at": func.coalesce(table.c.revoked_at, utc(at))},
            )
        )

    # --- merge and erasure ------------------------------------------------------------------

    async def merge(
        self, session: AsyncSession, tenant: str, survivor: str, gone: str, *, merge_id: str = ""
    ) -> None:
        """The merged customer's rows move to the survivor; when both were referred, the
        survivor's referral stays (the merged one's is set aside for an unmerge). Moves are
        logged under `merge_id` (loopkit.customer_rows), so an unmerge gives them back."""
        ref = C360ReferralRow
        both = await session.scalar(
            select(func.count())
            .select_from(ref)
            .where(ref.tenant_id == tenant, ref.newcomer_id.in_([survivor, gone]))
        )
        if both == 2:
            theirs = (
                await session.scalars(
                    select(ref).where(ref.tenant_id == tenant, ref.newcomer_id == gone)
                )
            ).all()
            await set_aside(
                session,
                ref,
                "newcomer_id",
                theirs,
                tenant_id=tenant,
                merge_id=merge_id,
                from_id=gone,
                to_id=survivor,
            )
            await session.execute(
                delete(ref).where(ref.tenant_id == tenant, ref.newcomer_id == gone)
            )
        await repoint_customer(
            session,
            [
                *((m, "customer_id") for m in _OWNED),
                (C360LeadRow, "referrer_customer_id"),
                (C360ReferralRow, "newcomer_id"),
                (C360ReferralRow, "referrer_id"),
            ],
            tenant_id=tenant,
            from_id=gone,
            to_id=survivor,
            merge_id=merge_id,
        )

    # --- who is forgotten ------------------------------------------------------------------

    async def lock(self, session: AsyncSession, tenant: str, ids: Sequence[str]) -> None:
        """Serialise the work on these customer ids until the transaction ends. The consumers
        of four streams run at once: without it, an event of a customer being forgotten could
        commit its rows after the erasure deleted theirs, and stay behind. SQLite's
        transactions are serial already (BEGIN IMMEDIATE)."""
        if ids and session.get_bind().dialect.name == "postgresql":
            keys = sorted({f"c360:{tenant}:{i}" for i in ids})
            await session.execute(_LOCK, {"keys": keys})

    async def forgotten_among(
        self, session: AsyncSession, tenant: str, ids: Sequence[str]
    ) -> set[str]:
        """Which of these customers the 360 erased. Takes their locks first, so an erasure in
        progress is waited for (and then seen: a statement of its own, a snapshot after it).
        An answer holds until the transaction ends (the lock keeps an erasure out), so each
        customer is looked up once per transaction: the activity handlers and the 360's own,
        which run on the same event, share it."""
        known = _looked_up(session)
        wanted = sorted({i for i in ids if i and (tenant, i) not in known})
        if wanted:
            await self.lock(session, tenant, wanted)
            found = set(
                await session.scalars(
                    select(C360ForgottenRow.customer_id).where(
                        C360ForgottenRow.tenant_id == tenant,
                        C360ForgottenRow.customer_id.in_(wanted),
                    )
                )
            )
            known.update({(tenant, i): i in found for i in wanted})
        return {i for i in ids if i and known[(tenant, i)]}

    async def erased_among(
        self, session: AsyncSession, tenant: str, ids: Sequence[str]
    ) -> set[str]:
        """Which of these customers retention erased, read without their locks: for a reader
        whose own erasure is serialised otherwise (the funnel's, under the funnel's locks), so
        that its consumers' batches do not queue behind the activity consumers' on these locks."""
        wanted = sorted({i for i in ids if i})
        if not wanted:
            return set()
        found = await session.scalars(
            select(C360ForgottenRow.customer_id).where(
                C360ForgottenRow.tenant_id == tenant, C360ForgottenRow.customer_id.in_(wanted)
            )
        )
        return set(found)

    async def erase(
        self, session: AsyncSession, tenant: str, ids: Sequence[str], at: datetime
    ) -> None:
        """Every row about these customers goes, and they are remembered as forgotten (an event
        of theirs coming late adds nothing); rows of others that named them as referrer keep the
        fact of a referral but not who made it."""
        if not ids:
            return
        await self.lock(session, tenant, ids)
        _looked_up(session).update({(tenant, i): True for i in ids})
        when = utc(at)
        forgotten = [
            {"tenant_id": tenant, "customer_id": i, "forgotten_at": when} for i in sorted(set(ids))
        ]
        stmt = conflict_insert(session, C360ForgottenRow).values(forgotten)
        await session.execute(
            stmt.on_conflict_do_nothing(index_elements=["tenant_id", "customer_id"])
        )
        for model in _OWNED:
            await session.execute(
                delete(model).where(model.tenant_id == tenant, model.customer_id.in_(ids))
            )
        ref = C360ReferralRow
        await session.execute(delete(ref).where(ref.tenant_id == tenant, ref.newcomer_id.in_(ids)))
        await session.execute(
            update(ref)
            .where(ref.tenant_id == tenant, ref.referrer_id.in_(ids))
            .values(referrer_id="")
        )
        lead = C360LeadRow
        await session.execute(
            update(lead)
            .where(lead.tenant_id == tenant, lead.referrer_customer_id.in_(ids))
            .values(referrer_customer_id="")
        )

    # --- reads (every id of the person: the survivor and the ids merged into it, so a late
    # event of a merged id shows too) ---------------------------------------------------------

    async def leads(
        self, session: AsyncSession, tenant: str, ids: Sequence[str]
    ) -> Sequence[C360LeadRow]:
        rows = await session.scalars(
            select(C360LeadRow)
            .where(C360LeadRow.tenant_id == tenant, C360LeadRow.customer_id.in_(ids))
            .order_by(C360LeadRow.captured_at, C360LeadRow.lead_id)
        )
        return rows.all()

    async def followups(
        self, session: AsyncSession, tenant: str, ids: Sequence[str], limit: int
    ) -> Sequence[C360FollowUpRow]:
        rows = await session.scalars(
            select(C360FollowUpRow)
            .where(C360FollowUpRow.tenant_id == tenant, C360FollowUpRow.customer_id.in_(ids))
            .order_by(C360FollowUpRow.at.desc(), C360FollowUpRow.follow_up_id)
            .limit(limit)
        )
        return list(reversed(rows.all()))

    async def orders(
        self, session: AsyncSession, tenant: str, ids: Sequence[str], limit: int
    ) -> Sequence[C360OrderRow]:
        rows = await session.scalars(
            select(C360OrderRow)
            .where(C360OrderRow.tenant_id == tenant, C360OrderRow.customer_id.in_(ids))
            .order_by(C360OrderRow.paid_at.desc(), C360OrderRow.order_id)
            .limit(limit)
        )
        return list(reversed(rows.all()))

    async def referred_by(
        self, session: AsyncSession, tenant: str, ids: Sequence[str]
    ) -> C360ReferralRow | None:
        rows = await session.scalars(
            select(C360ReferralRow)
            .where(C360ReferralRow.tenant_id == tenant, C360ReferralRow.newcomer_id.in_(ids))
            .order_by(C360ReferralRow.referred_at)
            .limit(1)
        )
        return rows.first()

    async def referrals_made(
        self, session: AsyncSession, tenant: str, ids: Sequence[str], limit: int
    ) -> Sequence[C360ReferralRow]:
        rows = await session.scalars(
            select(C360ReferralRow)
            .where(C360ReferralRow.tenant_id == tenant, C360ReferralRow.referrer_id.in_(ids))
            .order_by(C360ReferralRow.referred_at, C360ReferralRow.newcomer_id)
            .limit(limit)
        )
        return rows.all()

    async def shared_codes(
        self, session: AsyncSession, tenant: str, ids: Sequence[str]
    ) -> list[str]:
        table = C360EventRow.__table__
        rows = await session.scalars(
            select(table.c.ref)
            .where(
                and_(
                    table.c.tenant_id == tenant,
                    table.c.customer_id.in_(ids),
                    table.c.kind == "share.recorded",
                )
            )
            .distinct()
        )
        return [r for r in rows.all() if r]

    async def rewards(
        self, session: AsyncSession, tenant: str, ids: Sequence[str], limit: int
    ) -> Sequence[C360RewardRow]:
        rows = await session.scalars(
            select(C360RewardRow)
            .where(C360RewardRow.tenant_id == tenant, C360RewardRow.customer_id.in_(ids))
            .order_by(C360RewardRow.granted_at, C360RewardRow.reward_id)
            .limit(limit)
        )
        return rows.all()

    async def timeline(
        self, session: AsyncSession, tenant: str, ids: Sequence[str], limit: int
    ) -> Sequence[C360EventRow]:
        """The latest `limit` entries, newest first."""
        rows = await session.scalars(
            select(C360EventRow)
            .where(C360EventRow.tenant_id == tenant, C360EventRow.customer_id.in_(ids))
            .order_by(C360EventRow.at.desc(), C360EventRow.entry_key)
            .limit(limit)
        )
        return rows.all()


def _first_non_empty(current: Any, incoming: Any, keep_current: Any) -> Any:
    """The current value unless it is empty or the incoming one is earlier."""
    return case(
        (and_(current != "", keep_current), current),
        (incoming != "", incoming),
        else_=current,
    )
