"""Every query of the activity model: customers' activity rows, their orders and products, tags
and stage changes (the tables this concept owns)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Table, and_, case, delete, func, insert, literal, or_, select, text, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from closedloop_retention.models import (
    ActivityRow,
    CustomerAliasRow,
    CustomerValueRow,
    OrderItemRow,
    OrderRow,
    RfmCutOffsRow,
    RfmDepartedRow,
    StageChangeRow,
    TagRow,
)
from loopkit.bulk import insert_rows
from loopkit.customer_rows import repoint_customer, repoint_unique
from loopkit.db import conflict_insert

# The tables keyed by (tenant, customer) this concept owns, besides the activity row itself.
_CUSTOMER_TABLES = (OrderRow, OrderItemRow, StageChangeRow, TagRow)
_MOVED_AS_IS = (OrderRow, OrderItemRow, StageChangeRow)
_STAGE_CHANGES: Table = StageChangeRow.__table__  # type: ignore[assignment]


class ReviewFacts(NamedTuple):
    """What the sweep reads of a due customer (the columns a review depends on)."""

    customer_id: str
    next_review_at: datetime | None
    stage: str
    stage_changed_at: datetime | None
    churn_risk_raised_at: datetime | None
    order_count: int
    first_order_at: datetime | None
    last_order_at: datetime | None
    last_seen_at: datetime
    unsubscribed: bool
    deleted_rep: bool
    win_back_attempts: int | None
    last_win_back_at: datetime | None


_REVIEW_COLUMNS = [ActivityRow.__table__.c[name] for name in ReviewFacts._fields]
# The columns a review writes, with their PostgreSQL array types for the batch UPDATE.
_REVIEWED_PG_TYPES = {
    "stage": "text[]",
    "stage_reason": "text[]",
    "stage_changed_at": "timestamptz[]",
    "next_review_at": "timestamptz[]",
    "churn_risk": "float8[]",
    "churn_risk_raised_at": "timestamptz[]",
    "win_back_attempts": "int[]",
    "last_win_back_at": "timestamptz[]",
}
_REVIEWED = tuple(_REVIEWED_PG_TYPES)
_UPDATE_REVIEWED_PG = text(
    "UPDATE activity AS a SET "
    + ", ".join(f"{name} = v.{name}" for name in _REVIEWED)
    + " FROM unnest(CAST(:customer_id AS text[]), "
    + ", ".join(f"CAST(:{name} AS {kind})" for name, kind in _REVIEWED_PG_TYPES.items())
    + ") AS v(customer_id, "
    + ", ".join(_REVIEWED)
    + ") WHERE a.tenant_id = :tenant AND a.customer_id = v.customer_id"
)


class ActivityRepository:
    async def find(
        self, session: AsyncSession, tenant: str, customer_id: str
    ) -> ActivityRow | None:
        return await session.get(ActivityRow, (tenant, customer_id))

    async def add_unless_present(
        self, session: AsyncSession, row: ActivityRow
    ) -> tuple[ActivityRow, bool]:
        """`row` inserted, or the customer's row that a concurrent transaction inserted first
        (ON CONFLICT DO NOTHING waits for that one to commit, then yields to it rather than
        failing on the key): (the row as stored, whether this call created it)."""
        columns = {
            attr.columns[0].name: getattr(row, attr.key)
            for attr in sa_inspect(ActivityRow).column_attrs
            if attr.key in row.__dict__
        }
        stmt = conflict_insert(session, ActivityRow).values(columns)
        result = await session.execute(
            stmt.on_conflict_do_nothing(index_elements=["tenant_id", "customer_id"])
        )
        stored = await session.get(ActivityRow, (row.tenant_id, row.customer_id))
        if stored is None:  # only a concurrent erasure between the two statements
            raise LookupError(f"activity row of {row.customer_id} vanished while created")
        return stored, bool(getattr(result, "rowcount", 0) == 1)

    async def tenants(self, session: AsyncSession) -> list[str]:
        """Every tenant with a customer (the sweep's list)."""
        return list(await session.scalars(select(ActivityRow.tenant_id).distinct()))

    async def due_for_review(
        self,
        session: AsyncSession,
        tenant: str,
        now: datetime,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[ReviewFacts]:
        """The next keyset batch of customers whose review moment has come: what a review reads."""
        query = select(*_REVIEW_COLUMNS).where(
            ActivityRow.tenant_id == tenant, ActivityRow.next_review_at <= now
        )
        if after is not None:
            query = query.where(
                or_(
                    ActivityRow.next_review_at > after[0],
                    and_(
                        ActivityRow.next_review_at == after[0],
                        ActivityRow.customer_id > after[1],
                    ),
                )
            )
        result = await session.execute(
            query.order_by(ActivityRow.next_review_at, ActivityRow.customer_id).limit(limit)
        )
        return [ReviewFacts(*row) for row in result]

    async def facts_after(
        self, session: AsyncSession, tenant: str, after_id: str, limit: int
    ) -> list[ReviewFacts]:
        """The next primary-key keyset batch of every customer (a full review's)."""
        result = await session.execute(
            select(*_REVIEW_COLUMNS)
            .where(ActivityRow.tenant_id == tenant, ActivityRow.customer_id > after_id)
            .order_by(ActivityRow.customer_id)
            .limit(limit)
        )
        return [ReviewFacts(*row) for row in result]

    async def update_reviewed(
        self, session: AsyncSession, tenant: str, updates: list[dict[str, Any]]
    ) -> None:
        """Write a batch of reviews (each a customer_id and its new lifecycle columns).

        PostgreSQL: one UPDATE ... FROM unnest(arrays), one statement for the batch. SQLite: the
        UPDATE by primary key as one executemany (local calls, no round trips). Rows of this
        session's identity map get the same values, so a read later in the transaction sees them.
        """
        if not updates:
            return
        if session.get_bind().dialect.name == "postgresql":
            columns = ("customer_id", *_REVIEWED)
            arrays = {name: [u[name] for u in updates] for name in columns}
            await session.execute(_UPDATE_REVIEWED_PG, {"tenant": tenant, **arrays})
        else:
            await session.execute(
                update(ActivityRow), [{"tenant_id": tenant, **u} for u in updates]
            )
        for u in updates:
            loaded = session.identity_map.get(identity_key(ActivityRow, (tenant, u["customer_id"])))
            if loaded is not None:
                for name in _REVIEWED:
                    set_committed_value(loaded, name, u[name])

    async def add_changes(self, session: AsyncSession, changes: list[dict[str, Any]]) -> None:
        """A batch of stage changes in one INSERT (PostgreSQL: one array per column)."""
        await insert_rows(session, _STAGE_CHANGES, changes)

    async def review_all(self, session: AsyncSession, tenant: str, at: datetime) -> None:
        await session.execute(
            update(ActivityRow)
            .where(ActivityRow.tenant_id == tenant)
            .values(next_review_at=at)
            .execution_options(synchronize_session=False)
        )

    # --- tags --------------------------------------------------------------------------------

    async def tags(self, session: AsyncSession, tenant: str, customer_id: str) -> list[str]:
        result = await session.scalars(
            select(TagRow.tag)
            .where(TagRow.tenant_id == tenant, TagRow.customer_id == customer_id)
            .order_by(TagRow.tag)
        )
        return list(result)

    def add_tag(
        self, session: AsyncSession, tenant: str, customer_id: str, tag: str, source: str
    ) -> None:
        session.add(TagRow(tenant_id=tenant, customer_id=customer_id, tag=tag, source=source))

    async def remove_tags(
        self, session: AsyncSession, tenant: str, customer_id: str, tags: Sequence[str]
    ) -> None:
        await session.execute(
            delete(TagRow).where(
                TagRow.tenant_id == tenant,
                TagRow.customer_id == customer_id,
                TagRow.tag.in_(list(tags)),
            )
        )

    # --- stage changes -----------------------------------------------------------------------

    def add_change(self, session: AsyncSession, row: StageChangeRow) -> None:
        session.add(row)

    async def history(
        self, session: AsyncSession, tenant: str, customer_id: str
    ) -> list[StageChangeRow]:
        result = await session.scalars(
            select(StageChangeRow)
            .where(StageChangeRow.tenant_id == tenant, StageChangeRow.customer_id == customer_id)
            .order_by(StageChangeRow.at, StageChangeRow.id)
        )
        return list(result)

    # --- orders ------------------------------------------------------------------------------

    async def order(self, session: AsyncSession, tenant: str, order_id: str) -> OrderRow | None:
        return await session.get(OrderRow, (tenant, order_id))

    def add_order(
        self, session: AsyncSession, order: OrderRow, items: Sequence[OrderItemRow]
    ) -> None:
        session.add(order)
        for item in items:
            session.add(item)

    async def drop_items(self, session: AsyncSession, tenant: str, order_id: str) -> None:
        """A fully refunded order's products no longer count for suggestions."""
        await session.execute(
            delete(OrderItemRow).where(
                OrderItemRow.tenant_id == tenant, OrderItemRow.order_id == order_id
            )
        )

    async def order_span(
        self, session: AsyncSession, tenant: str, customer_id: str
    ) -> tuple[datetime | None, datetime | None]:
        """(first, last) payment time of the customer's orders not fully refunded."""
        first, last = (
            await session.execute(
                select(func.min(OrderRow.paid_at), func.max(OrderRow.paid_at)).where(
                    OrderRow.tenant_id == tenant,
                    OrderRow.customer_id == customer_id,
                    OrderRow.fully_refunded.is_(False),
                )
            )
        ).one()
        return first, last

    # --- the RFM inputs ----------------------------------------------------------------------

    async def keep_value_inputs(self, session: AsyncSession, row: ActivityRow) -> None:
        """Copy the row's last order time, orders and revenue into `customer_value`, which the
        rescore ranks (activity/value.py): called wherever these change (an order paid or
        refunded, a merge, an unmerge). The first change after a rescore holds the inputs that
        rescore ranked (`held_*`, with the tenant's generation), so the scores read stay the
        ones it gave until the next rescore; a new buyer's row holds none (scores 0 until
        then). A customer who bought no more keeps their row, its inputs updated."""
        v = CustomerValueRow
        inputs = {
            "last_order_at": row.last_order_at,
            "order_count": row.order_count,
            "revenue_minor": row.revenue_minor,
        }
        generation = func.coalesce(_generation(row.tenant_id), 0)
        # Already held since the last rescore: keep what is held; else hold the inputs now.
        held = v.held_generation == generation
        hold = {
            "held_generation": generation,
            "held_last_order_at": case((held, v.held_last_order_at), else_=v.last_order_at),
            "held_order_count": case((held, v.held_order_count), else_=v.order_count),
            "held_revenue_minor": case((held, v.held_revenue_minor), else_=v.revenue_minor),
        }
        if row.order_count > 0 and row.last_order_at is not None:
            stmt = conflict_insert(session, v).values(
                tenant_id=row.tenant_id,
                customer_id=row.customer_id,
                held_generation=generation,
                **inputs,
            )
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["tenant_id", "customer_id"], set_={**inputs, **hold}
                )
            )
            return
        await session.execute(
            update(v)
            .where(v.tenant_id == row.tenant_id, v.customer_id == row.customer_id)
            .values({**inputs, **hold})
            .execution_options(synchronize_session=False)
        )

    async def drop_value(self, session: AsyncSession, tenant: str, customer_id: str) -> None:
        """The customer's RFM row goes (no activity row of their own any more)."""
        await _drop_values(session, tenant, CustomerValueRow.customer_id == customer_id)

    # --- customer events ---------------------------------------------------------------------

    async def drop(self, session: AsyncSession, row: ActivityRow) -> None:
        await _drop_values(session, row.tenant_id, CustomerValueRow.customer_id == row.customer_id)
        await session.delete(row)

    async def repoint(
        self, session: AsyncSession, tenant: str, merged: str, survivor: str, merge_id: str
    ) -> None:
        """The merged customer's orders, products, stage changes and tags become the survivor's
        (a tag both had is kept once; the merged one's copy is set aside for an unmerge)."""
        # The merged customer's scores go; the next rescore scores each side's own facts (after
        # a merge the survivor's combined ones, after an unmerge each one's again).
        await _drop_values(session, tenant, CustomerValueRow.customer_id == merged)
        args = {"tenant_id": tenant, "from_id": merged, "to_id": survivor, "merge_id": merge_id}
        await repoint_unique(session, TagRow, "customer_id", ["tag"], **args)
        await repoint_customer(session, [(m, "customer_id") for m in _MOVED_AS_IS], **args)

    async def order_totals(
        self, session: AsyncSession, tenant: str, customer_id: str
    ) -> tuple[int, int]:
        """(orders not fully refunded, revenue net of refunds) from the customer's orders."""
        count, revenue = (
            await session.execute(
                select(
                    func.count().filter(OrderRow.fully_refunded.is_(False)),
                    func.coalesce(func.sum(OrderRow.amount_minor - OrderRow.refunded_minor), 0),
                ).where(OrderRow.tenant_id == tenant, OrderRow.customer_id == customer_id)
            )
        ).one()
        return int(count or 0), max(int(revenue or 0), 0)

    # --- aliases of merged customers ---------------------------------------------------------

    async def survivor_of(self, session: AsyncSession, tenant: str, customer_id: str) -> str:
        """The live customer holding `customer_id`'s rows (itself unless merged away)."""
        found = await session.scalar(
            select(CustomerAliasRow.survivor_id).where(
                CustomerAliasRow.tenant_id == tenant, CustomerAliasRow.customer_id == customer_id
            )
        )
        return found or customer_id

    async def alias(
        self, session: AsyncSession, tenant: str, merged: str, survivor: str, merge_id: str
    ) -> None:
        """`merged` (and every id merged into it before) now stands for `survivor`."""
        await repoint_customer(
            session,
            [(CustomerAliasRow, "survivor_id")],
            tenant_id=tenant,
            from_id=merged,
            to_id=survivor,
            merge_id=merge_id,
        )
        await session.execute(
            delete(CustomerAliasRow).where(
                CustomerAliasRow.tenant_id == tenant, CustomerAliasRow.customer_id == merged
            )
        )
        session.add(
            CustomerAliasRow(
                tenant_id=tenant, customer_id=merged, survivor_id=survivor, merge_id=merge_id
            )
        )
        await session.flush()

    async def unalias(self, session: AsyncSession, tenant: str, restored: str) -> None:
        """`restored` is a customer of its own again."""
        await session.execute(
            delete(CustomerAliasRow).where(
                CustomerAliasRow.tenant_id == tenant, CustomerAliasRow.customer_id == restored
            )
        )

    async def forget(self, session: AsyncSession, tenant: str, ids: list[str]) -> None:
        await _drop_values(session, tenant, CustomerValueRow.customer_id.in_(ids))
        for model in (ActivityRow, CustomerAliasRow, *_CUSTOMER_TABLES):
            await session.execute(
                delete(model)
                .where(model.tenant_id == tenant, model.customer_id.in_(ids))
                .execution_options(synchronize_session=False)
            )


def _generation(tenant: str) -> Any:
    """The tenant's rescore generation (NULL before the first) under a share lock of its
    cut-offs row: a rescore running now (which holds that row's lock) is waited for and its
    generation read, and a rescore starting now waits for this transaction, so every change
    of the inputs is either counted by a rescore or tagged with its generation
    (activity/value.py). SQLite has one writer: no lock."""
    return (
        select(RfmCutOffsRow.generation)
        .where(RfmCutOffsRow.tenant_id == tenant)
        .with_for_update(read=True, key_share=True)
        .scalar_subquery()
    )


async def _drop_values(session: AsyncSession, tenant: str, which: Any) -> None:
    """Delete customers' RFM rows, first keeping the inputs the last rescore ranked of those it
    ranked as buyers (`rfm_departed`, without the customer's id), so the next rescore can take
    them out of its counts without counting everyone."""
    v = CustomerValueRow
    generation = _generation(tenant)
    held = v.held_generation == generation
    last = case((held, v.held_last_order_at), else_=v.last_order_at)
    orders = case((held, v.held_order_count), else_=v.order_count)
    revenue = case((held, v.held_revenue_minor), else_=v.revenue_minor)
    ranked = select(literal(tenant), generation, last, orders, revenue).where(
        v.tenant_id == tenant, which, generation.is_not(None), orders > 0, last.is_not(None)
    )
    columns = ["tenant_id", "generation", "last_order_at", "order_count", "revenue_minor"]
    await session.execute(insert(RfmDepartedRow).from_select(columns, ranked))
    await session.execute(
        delete(v).where(v.tenant_id == tenant, which).execution_options(synchronize_session=False)
    )
