"""Rep notices: what a rep is told, through which corp, and what became of it.

A notice is stored in the transaction that makes its reason (the task, the assignment), under an
idempotency key that is also the gateway's (`task:<task id>`, `assigned:<lead id>`), so a retry
or a second replica never messages the rep twice. It is only made `pending` when the tenant's
corp has an application configured (agent_id + agent_secret in the account registry) and the
gateway is wired; otherwise it is recorded `not_notified` with the reason, and the task shows it.
The notice names the customer only by id: never a phone number or other personal data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_conversion.common import new_id, utc
from closedloop_conversion.models import RepNoticeRow, RepRow
from closedloop_conversion.notices import repository as repo
from closedloop_conversion.sales.repository import SalesRepository
from loopkit.accounts import AccountRegistry
from loopkit.errors import DomainError
from loopkit.uow import on_commit
from loopkit.wechat.sender import SendReceipt

PENDING, SENT, FAILED, NOT_NOTIFIED = repo.PENDING, "sent", "failed", "not_notified"
NO_APP = "not notified (no app configured)"
NO_GATEWAY = "not notified (no gateway configured)"
# A notice the gateway holds (queued or paused there) is looked at again after this, doubling.
RECHECK_BASE = timedelta(seconds=2)
RECHECK_MAX = timedelta(minutes=10)
_sales = SalesRepository()
# A claimed notice is skipped by other rounds this long (the gateway call's bound).
CLAIM = timedelta(seconds=60)


class MemberMessenger(Protocol):
    """Hands a text for a corp member to the gateway (loopkit.gateway_client.GatewayClient)."""

    async def notify_member(
        self, tenant_id: str, corp_id: str, userid: str, text: str, *, key: str
    ) -> SendReceipt: ...


# On a `lead.assigned` whose transaction told `leads_assigned` of it (stored its notice, or decided
# not to): the rep-notices consumer acks such an event unopened (`Subscription.skip_header`). An
# event without it (an older replica's, a hand-made one) still goes through that consumer.
TOLD_HEADER = ("Closedloop-Notice", "told")
TOLD = dict([TOLD_HEADER])


@dataclass(frozen=True)
class Assigned:
    """A lead given to a rep, as `lead_assigned` takes it."""

    tenant: str
    lead_id: str
    rep_id: str
    # The assignment event's id when the lead had a rep before (a reassignment), else "".
    reassignment_id: str
    at: datetime


def _assigned_key(lead_id: str, reassignment_id: str) -> str:
    """`assigned:<lead id>` on the first assignment, `assigned:<lead id>:<event id>` later."""
    return ("assigned:" + lead_id + (f":{reassignment_id}" if reassignment_id else ""))[:200]


def _assigned_text(lead_id: str) -> str:
    return f"A new lead is yours: lead {lead_id}. Please follow up soon."


@dataclass(frozen=True)
class DueNotice:
    id: str
    tenant_id: str
    idempotency_key: str
    corp_id: str
    userid: str
    text: str
    attempts: int


class NoticeService:
    def __init__(self, registry: AccountRegistry, *, gateway: bool) -> None:
        self._registry = registry
        self._gateway = gateway
        self._stored: Callable[[], None] | None = None

    def on_stored(self, wake: Callable[[], None]) -> None:
        """Call `wake` after a transaction that stored a pending notice commits."""
        self._stored = wake

    def _why_not(self, tenant: str, wecom_user_id: str) -> tuple[str, str]:
        """(corp_id, "") when the rep can be messaged, else ("", the reason)."""
        try:
            corp = self._registry.wecom_corp(tenant, "")
        except DomainError:
            return "", "not notified (no WeCom corp configured)"
        if corp.app() is None:
            return "", NO_APP
        if not self._gateway:
            return "", NO_GATEWAY
        if not wecom_user_id:
            return "", "not notified (the rep has no WeCom user id)"
        return corp.corp_id, ""

    def _row(
        self,
        tenant: str,
        rep_id: str,
        wecom_user_id: str,
        *,
        key: str,
        text: str,
        at: datetime,
        task_id: str | None = None,
        lead_id: str | None = None,
        why: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """A new notice's row: pending when the rep can be messaged, else not_notified and why
        (`why`: `_why_not(tenant, wecom_user_id)`, when the caller has it)."""
        corp_id, reason = why or self._why_not(tenant, wecom_user_id)
        status = PENDING if corp_id else NOT_NOTIFIED
        at = utc(at)
        return {
            "id": new_id(),
            "tenant_id": tenant,
            "idempotency_key": key,
            "rep_id": rep_id,
            "task_id": task_id,
            "lead_id": lead_id,
            "corp_id": corp_id,
            "userid": wecom_user_id,
            "text": text[:2000],
            "status": status,
            "detail": reason,
            "attempts": 0,
            "next_attempt_at": at if status == PENDING else None,
            "created_at": at,
            "settled_at": None if status == PENDING else at,
        }

    async def enqueue(
        self,
        session: AsyncSession,
        rep: RepRow,
        key: str,
        text: str,
        at: datetime,
        *,
        task_id: str | None = None,
        lead_id: str | None = None,
    ) -> tuple[str, str]:
        """The notice for `key` (once): its status and why (the caller copies both onto the
        task it is about; `settle` keeps that copy up to date)."""
        existing = await repo.by_key(session, rep.tenant_id, key)
        if existing is not None:
            return existing.status, existing.detail
        row = self._row(
            rep.tenant_id,
            rep.id,
            rep.wecom_user_id,
            key=key,
            text=text,
            at=at,
            task_id=task_id,
            lead_id=lead_id,
        )
        session.add(RepNoticeRow(**row))
        await session.flush()
        if row["status"] == PENDING and self._stored is not None:
            on_commit(session, self._stored)
        return row["status"], row["detail"]

    async def lead_assigned(
        self,
        session: AsyncSession,
        tenant: str,
        lead_id: str,
        rep_id: str,
        *,
        reassignment_id: str,
        at: datetime,
    ) -> tuple[str, str] | None:
        """Tell the rep a lead is theirs: `assigned:<lead id>` on the first assignment,
        `assigned:<lead id>:<reassignment_id>` on a later one (a lead handed back to the same
        rep is news again). None when the rep is unknown or gone."""
        rep = await _sales.rep(session, tenant, rep_id)
        if rep is None or rep.status == "departed":
            return None
        key = _assigned_key(lead_id, reassignment_id)
        return await self.enqueue(session, rep, key, _assigned_text(lead_id), at, lead_id=lead_id)

    async def leads_assigned(
        self,
        session: AsyncSession,
        assigned: Sequence[Assigned],
        *,
        reps: Mapping[str, Any] | None = None,
        new_leads: bool = False,
    ) -> None:
        """`lead_assigned` for several assignments at once: per tenant, the reps and the notices
        already stored are one query each and the new notices one statement (a key seen before,
        stored or earlier in `assigned`, is skipped as `enqueue` skips it).

        A caller that holds the reps already (rows with `id`, `status` and `wecom_user_id`, by
        id: the batch capture's locked pool) passes them as `reps`; one that created the leads in
        this transaction (`new_leads`: no notice of theirs can be stored yet) skips the look-up
        of stored keys and writes without ON CONFLICT (a key stored meanwhile fails the
        transaction, whose lead insert fails on the same race anyway)."""
        by_tenant: dict[str, list[Assigned]] = {}
        for item in assigned:
            by_tenant.setdefault(item.tenant, []).append(item)
        rows: list[dict[str, Any]] = []
        for tenant, items in by_tenant.items():
            if new_leads:
                seen: set[str] = set()
            else:
                keys = {_assigned_key(i.lead_id, i.reassignment_id) for i in items}
                seen = await repo.keys_stored(session, tenant, keys)
                if keys <= seen:  # every notice stored already (the consumer's usual case)
                    continue
            known = (
                reps
                if reps is not None
                else await _sales.reps_by_id(session, tenant, {i.rep_id for i in items})
            )
            why: dict[str, tuple[str, str]] = {}  # by rep: whether it can be messaged, and why
            for item in items:
                key = _assigned_key(item.lead_id, item.reassignment_id)
                rep = known.get(item.rep_id)
                if key in seen or rep is None or rep.status == "departed":
                    continue
                seen.add(key)
                if rep.id not in why:
                    why[rep.id] = self._why_not(tenant, rep.wecom_user_id)
                rows.append(
                    self._row(
                        tenant,
                        rep.id,
                        rep.wecom_user_id,
                        key=key,
                        text=_assigned_text(item.lead_id),
                        at=item.at,
                        lead_id=item.lead_id,
                        why=why[rep.id],
                    )
                )
        await repo.insert_new(session, rows, skip_taken=not new_leads)
        if self._stored is not None and any(r["status"] == PENDING for r in rows):
            on_commit(session, self._stored)

    async def claim_due(self, session: AsyncSession, at: datetime, limit: int) -> list[DueNotice]:
        rows = await repo.claim_due(session, utc(at), utc(at) + CLAIM, limit)
        return [
            DueNotice(r.id, r.tenant_id, r.idempotency_key, r.corp_id, r.userid, r.text, r.attempts)
            for r in rows
        ]

    async def settle(
        self, session: AsyncSession, notice_id: str, status: str, detail: str, at: datetime
    ) -> None:
        """The gateway's answer: SENT / FAILED are final; PENDING (held at the gateway, or the
        gateway unreachable) is looked at again later, with back-off."""
        row = await repo.get(session, notice_id)
        if row is None or row.status != PENDING:
            return
        at = utc(at)
        row.attempts += 1
        row.detail = detail[:300]
        if status == PENDING:
            delay = min(RECHECK_MAX, RECHECK_BASE * 2 ** min(row.attempts - 1, 16))
            row.next_attempt_at = at + delay
        else:
            row.status, row.next_attempt_at, row.settled_at = status, None, at
        if row.task_id:
            await repo.mark_task(session, row.tenant_id, row.task_id, row.status, row.detail)
