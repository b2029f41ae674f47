"""Every query of referrals, the ledger and the customers this service has seen (its tables)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, and_, delete, func, select, union
from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop_referral.models import KnownCustomerRow, LedgerRow, ReferralRow, RewardRow
from loopkit.customer_rows import repoint_customer

LIVE = ("approved", "flagged")


class ReferralRepository:
    # --- referrals ---------------------------------------------------------------------------

    async def get(
        self, session: AsyncSession, referral_id: str, *, lock: bool = False
    ) -> ReferralRow | None:
        return await session.get(ReferralRow, referral_id, with_for_update=lock or None)

    async def of_newcomer(
        self, session: AsyncSession, tenant: str, newcomer: str, *, lock: bool = False
    ) -> ReferralRow | None:
        query = select(ReferralRow).where(
            ReferralRow.tenant_id == tenant, ReferralRow.newcomer_id == newcomer
        )
        # Locked by writers, so two instances handling one newcomer's events take turns.
        return await session.scalar(query.with_for_update() if lock else query)

    async def by_qualifying_order(
        self, session: AsyncSession, tenant: str, order_id: str
    ) -> ReferralRow | None:
        return await session.scalar(
            select(ReferralRow).where(
                ReferralRow.tenant_id == tenant, ReferralRow.qualified_order_id == order_id
            )
        )

    async def add(self, session: AsyncSession, row: ReferralRow) -> None:
        session.add(row)
        await session.flush()

    async def referrer_of(
        self, session: AsyncSession, tenant: str, newcomer: str, statuses: Sequence[str]
    ) -> str | None:
        """Who referred `newcomer`, if their referral has one of `statuses`."""
        return await session.scalar(
            select(ReferralRow.referrer_id).where(
                ReferralRow.tenant_id == tenant,
                ReferralRow.newcomer_id == newcomer,
                ReferralRow.status.in_(tuple(statuses)),
            )
        )

    async def referred_since(
        self, session: AsyncSession, tenant: str, referrer: str, since: datetime
    ) -> int:
        value = await session.scalar(
            select(func.count())
            .select_from(ReferralRow)
            .where(
                ReferralRow.tenant_id == tenant,
                ReferralRow.referrer_id == referrer,
                ReferralRow.created_at >= since,
            )
        )
        return int(value or 0)

    async def listed(
        self,
        session: AsyncSession,
        tenant: str,
        *,
        status: str,
        referrer: str,
        program_id: str,
        limit: int,
    ) -> list[ReferralRow]:
        query = select(ReferralRow).where(ReferralRow.tenant_id == tenant)
        if status:
            query = query.where(ReferralRow.status == status)
        if referrer:
            query = query.where(ReferralRow.referrer_id == referrer)
        if program_id:
            query = query.where(ReferralRow.program_id == program_id)
        query = query.order_by(ReferralRow.created_at.desc(), ReferralRow.id.desc()).limit(limit)
        return list(await session.scalars(query))

    async def referred_by(
        self, session: AsyncSession, tenant: str, referrers: Sequence[str]
    ) -> list[ReferralRow]:
        """The referrals made by any of `referrers`, oldest first."""
        return list(
            await session.scalars(
                select(ReferralRow)
                .where(ReferralRow.tenant_id == tenant, ReferralRow.referrer_id.in_(referrers))
                .order_by(ReferralRow.created_at, ReferralRow.id)
            )
        )

    async def self_loops(
        self, session: AsyncSession, tenant: str, customer: str
    ) -> list[ReferralRow]:
        """Live referrals where `customer` referred themselves (after a merge)."""
        return list(
            await session.scalars(
                select(ReferralRow).where(
                    ReferralRow.tenant_id == tenant,
                    ReferralRow.referrer_id == customer,
                    ReferralRow.newcomer_id == customer,
                    ReferralRow.status.in_(LIVE),
                )
            )
        )

    async def repoint_referrer(
        self, session: AsyncSession, tenant: str, merged: str, survivor: str, merge_id: str
    ) -> None:
        columns = [(ReferralRow, "referrer_id")]
        await repoint_customer(
            session, columns, tenant_id=tenant, from_id=merged, to_id=survivor, merge_id=merge_id
        )

    # --- stats of a program ------------------------------------------------------------------

    async def program_counts(
        self, session: AsyncSession, tenant: str, program_id: str
    ) -> tuple[int, int, int, int]:
        """(referrals, flagged, approved, converted) of the program."""
        in_program = and_(ReferralRow.tenant_id == tenant, ReferralRow.program_id == program_id)

        async def count(*where: object) -> int:
            value = await session.scalar(
                select(func.count()).select_from(ReferralRow).where(in_program, *where)  # type: ignore[arg-type]
            )
            return int(value or 0)

        return (
            await count(),
            await count(ReferralRow.status == "flagged"),
            await count(ReferralRow.status == "approved"),
            await count(ReferralRow.converted_at.is_not(None)),
        )

    async def conversion_times(
        self, session: AsyncSession, tenant: str, program_id: str
    ) -> list[tuple[datetime, datetime]]:
        """(created, converted) of the program's converted referrals."""
        rows = await session.execute(
            select(ReferralRow.created_at, ReferralRow.converted_at).where(
                ReferralRow.tenant_id == tenant,
                ReferralRow.program_id == program_id,
                ReferralRow.converted_at.is_not(None),
            )
        )
        return [(created, converted) for created, converted in rows.all() if converted is not None]

    async def referrer_count(
        self, session: AsyncSession, tenant: str, program_id: str, code_holders: Select[str]
    ) -> int:
        """How many customers referred someone through the program or are among `code_holders`
        (ProgramRepository.code_holders). A forgotten referrer's codes go, their referrals stay:
        counted through those, the viral coefficient (approved newcomers per referrer) does not
        jump at a forget."""
        referrers = union(
            code_holders,
            select(ReferralRow.referrer_id).where(
                ReferralRow.tenant_id == tenant, ReferralRow.program_id == program_id
            ),
        ).subquery()
        return int(await session.scalar(select(func.count()).select_from(referrers)) or 0)

    async def top_referrers(
        self, session: AsyncSession, tenant: str, program_id: str, limit: int
    ) -> list[tuple[str, int, int]]:
        """(referrer, approved newcomers, converted) with the most approved newcomers."""
        rows = await session.execute(
            select(ReferralRow.referrer_id, func.count(), func.count(ReferralRow.converted_at))
            .where(
                ReferralRow.tenant_id == tenant,
                ReferralRow.program_id == program_id,
                ReferralRow.status == "approved",
            )
            .group_by(ReferralRow.referrer_id)
            .order_by(func.count().desc(), ReferralRow.referrer_id)
            .limit(limit)
        )
        return [(r, int(n), int(c)) for r, n, c in rows.all()]

    # --- the ledger --------------------------------------------------------------------------

    def log(
        self,
        session: AsyncSession,
        referral: ReferralRow,
        reward: RewardRow | None,
        change: tuple[str, str],
        reason: str,
        *,
        at: datetime,
        actor: str = "system",
    ) -> None:
        """One ledger row for a state change of a referral or of one of its rewards."""
        from_status, to_status = change
        session.add(
            LedgerRow(
                id=str(ULID()),
                tenant_id=referral.tenant_id,
                referral_id=referral.id,
                reward_id=reward.id if reward is not None else "",
                from_status=from_status,
                to_status=to_status,
                reason=reason[:200],
                actor=actor[:200],
                at=at,
            )
        )

    async def ledger(self, session: AsyncSession, tenant: str, referral_id: str) -> list[LedgerRow]:
        return list(
            await session.scalars(
                select(LedgerRow)
                .where(LedgerRow.tenant_id == tenant, LedgerRow.referral_id == referral_id)
                .order_by(LedgerRow.at, LedgerRow.id)
            )
        )

    # --- customers seen ----------------------------------------------------------------------

    async def known(self, session: AsyncSession, tenant: str, customer: str) -> KnownCustomerRow:
        """What we know of the customer (a new, empty row on first sight)."""
        row = await session.get(KnownCustomerRow, (tenant, customer))
        if row is None:
            row = KnownCustomerRow(tenant_id=tenant, customer_id=customer)
            session.add(row)
        return row

    async def find_known(
        self, session: AsyncSession, tenant: str, customer: str
    ) -> KnownCustomerRow | None:
        return await session.get(KnownCustomerRow, (tenant, customer))

    async def drop_known(self, session: AsyncSession, row: KnownCustomerRow) -> None:
        await session.delete(row)

    async def forget_known(self, session: AsyncSession, tenant: str, ids: list[str]) -> None:
        await session.execute(
            delete(KnownCustomerRow).where(
                KnownCustomerRow.tenant_id == tenant, KnownCustomerRow.customer_id.in_(ids)
            )
        )
