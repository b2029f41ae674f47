"""Every query of programs, codes, shares and visits (the tables this concept owns)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_referral.models import CodeRow, ProgramRow, ShareRow, VisitRow
from loopkit.customer_rows import repoint_customer


class ProgramRepository:
    # --- one row ---------------------------------------------------------------------------

    async def program(self, session: AsyncSession, program_id: str) -> ProgramRow | None:
        return await session.get(ProgramRow, program_id)

    async def code(self, session: AsyncSession, code: str, *, hold: bool = False) -> CodeRow | None:
        """`hold`: share-locked until the transaction ends (PostgreSQL), so a merge or a forget
        of its owner, which writes the code row before the visits, waits for what is written
        under the owner read here (and this read waits for theirs, then sees it)."""
        if hold:
            return await session.get(CodeRow, code, with_for_update={"read": True})
        return await session.get(CodeRow, code)

    async def share(self, session: AsyncSession, share_id: str) -> ShareRow | None:
        return await session.get(ShareRow, share_id)

    async def primary_code(
        self, session: AsyncSession, tenant_id: str, customer_id: str, program_id: str
    ) -> CodeRow | None:
        return await session.scalar(
            select(CodeRow).where(
                CodeRow.tenant_id == tenant_id,
                CodeRow.customer_id == customer_id,
                CodeRow.program_id == program_id,
                CodeRow.slot == "",
            )
        )

    async def add(self, session: AsyncSession, row: ProgramRow | CodeRow | ShareRow) -> None:
        session.add(row)
        await session.flush()

    def add_unflushed(self, session: AsyncSession, row: ShareRow | VisitRow) -> None:
        session.add(row)

    # --- what attribution asks -------------------------------------------------------------

    async def claim_visits(
        self, session: AsyncSession, tenant: str, newcomer: str, openids: Sequence[str]
    ) -> None:
        """The newcomer's earlier anonymous visits (by openid) become theirs."""
        await session.execute(
            update(VisitRow)
            .where(
                VisitRow.tenant_id == tenant,
                VisitRow.visitor_customer_id == "",
                VisitRow.visitor_openid.in_(list(openids)),
            )
            .values(visitor_customer_id=newcomer)
        )

    async def active_visits_of(
        self, session: AsyncSession, tenant: str, visitor: str
    ) -> list[VisitRow]:
        """The visitor's visits while their program was active, earliest first."""
        return list(
            await session.scalars(
                select(VisitRow)
                .where(
                    VisitRow.tenant_id == tenant,
                    VisitRow.visitor_customer_id == visitor,
                    VisitRow.program_active.is_(True),
                )
                .order_by(VisitRow.at, VisitRow.id)
            )
        )

    async def codes_of(self, session: AsyncSession, tenant: str, customer: str) -> list[CodeRow]:
        """The customer's codes, newest first."""
        return list(
            await session.scalars(
                select(CodeRow)
                .where(CodeRow.tenant_id == tenant, CodeRow.customer_id == customer)
                .order_by(CodeRow.created_at.desc())
            )
        )

    async def device_used_by(
        self, session: AsyncSession, tenant: str, customer: str, device_id: str
    ) -> bool:
        """Whether `customer` visited a link, or created a code, from this device."""
        visits = await session.scalar(
            select(func.count())
            .select_from(VisitRow)
            .where(
                VisitRow.tenant_id == tenant,
                VisitRow.visitor_customer_id == customer,
                VisitRow.device_id == device_id,
            )
        )
        codes = await session.scalar(
            select(func.count())
            .select_from(CodeRow)
            .where(
                CodeRow.tenant_id == tenant,
                CodeRow.customer_id == customer,
                CodeRow.device_id == device_id,
            )
        )
        return bool(visits or codes)

    # --- stats -----------------------------------------------------------------------------

    async def counts(
        self, session: AsyncSession, tenant: str, program_id: str
    ) -> tuple[int, int, int]:
        """(codes, shares, visits) of the program."""
        codes = await session.scalar(
            select(func.count())
            .select_from(CodeRow)
            .where(CodeRow.tenant_id == tenant, CodeRow.program_id == program_id)
        )
        shares = await session.scalar(
            select(func.count())
            .select_from(ShareRow)
            .where(ShareRow.tenant_id == tenant, ShareRow.program_id == program_id)
        )
        visits = await session.scalar(
            select(func.count())
            .select_from(VisitRow)
            .where(VisitRow.tenant_id == tenant, VisitRow.program_id == program_id)
        )
        return int(codes or 0), int(shares or 0), int(visits or 0)

    def code_holders(self, tenant: str, program_id: str) -> Select[str]:
        """The customers holding a code of the program (a query, for the referrer count)."""
        return select(CodeRow.customer_id).where(
            CodeRow.tenant_id == tenant, CodeRow.program_id == program_id
        )

    # --- customer events -------------------------------------------------------------------

    async def repoint(
        self, session: AsyncSession, tenant: str, merged: str, survivor: str, merge_id: str
    ) -> None:
        """The merged customer's codes, shares and visits become the survivor's. A program both
        had a code in: the merged one's code stays valid, as a secondary code (slot = code)."""
        kept = select(CodeRow.program_id).where(
            CodeRow.tenant_id == tenant, CodeRow.customer_id == survivor, CodeRow.slot == ""
        )
        await session.execute(
            update(CodeRow)
            .where(
                CodeRow.tenant_id == tenant,
                CodeRow.customer_id == merged,
                CodeRow.slot == "",
                CodeRow.program_id.in_(kept),
            )
            .values(slot=CodeRow.code)
        )
        # The codes before the visits: a visit holding a code (`code(hold=True)`) commits
        # before the visits are moved, so it moves too.
        columns = [
            (CodeRow, "customer_id"),
            (ShareRow, "customer_id"),
            (VisitRow, "referrer_id"),
            (VisitRow, "visitor_customer_id"),
        ]
        await repoint_customer(
            session, columns, tenant_id=tenant, from_id=merged, to_id=survivor, merge_id=merge_id
        )

    async def promote_codes(self, session: AsyncSession, tenant: str, customer: str) -> None:
        """A secondary code (given back by an unmerge) is the customer's main code again in a
        program where it has no main code."""
        has_main = select(CodeRow.program_id).where(
            CodeRow.tenant_id == tenant, CodeRow.customer_id == customer, CodeRow.slot == ""
        )
        await session.execute(
            update(CodeRow)
            .where(
                CodeRow.tenant_id == tenant,
                CodeRow.customer_id == customer,
                CodeRow.slot != "",
                CodeRow.program_id.not_in(has_main),
            )
            .values(slot="")
            .execution_options(synchronize_session=False)
        )

    async def erase_personal(self, session: AsyncSession, tenant: str, ids: list[str]) -> None:
        """Openids, device hints and shared content of these customers go, and so do their
        codes: a forgotten referrer's link answers 404 instead of recording visitors under them
        (and publishing `share_visited`, which acquisition would credit to them). The visits of
        their links keep only the program and the time (the program's visit count): no code,
        share or referrer ties a visitor to them any more. Referrals keep the referrer's
        pseudonymous id, as the accounts of rewards paid."""
        # The codes first: a visit holding one (`code(hold=True)`) commits before the visits
        # below are read, so it is untied too.
        await session.execute(
            delete(CodeRow).where(CodeRow.tenant_id == tenant, CodeRow.customer_id.in_(ids))
        )
        await session.execute(
            update(VisitRow)
            .where(VisitRow.tenant_id == tenant, VisitRow.referrer_id.in_(ids))
            .values(
                referrer_id="",
                code="",
                share_id="",
                visitor_openid="",
                visitor_appid="",
                device_id="",
            )
        )
        await session.execute(
            update(VisitRow)
            .where(VisitRow.tenant_id == tenant, VisitRow.visitor_customer_id.in_(ids))
            .values(visitor_openid="", visitor_appid="", device_id="")
        )
        await session.execute(
            delete(ShareRow).where(ShareRow.tenant_id == tenant, ShareRow.customer_id.in_(ids))
        )
