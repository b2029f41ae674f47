"""Durable sends: a request is stored under its idempotency key, claimed by one replica, tried,
and settled with its outcome published through the transactional outbox (message.sent /
message.failed). Each key is executed at most once.

The one window this cannot close: a replica that stops after WeChat accepted a message and before
the outcome is committed. The send stays `sending`; when its lease runs out another replica finds
it in doubt and, since WeChat gives no way to ask whether a customer-service, template or welcome
message went out, settles it as failed with "outcome unknown" instead of sending it again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop.events.v1 import gateway_events_pb2 as ev
from closedloop.events.v1.envelope_pb2 import Envelope
from closedloop_gateway.interactions import service as interactions
from closedloop_gateway.models import SendRow
from closedloop_gateway.sends import repository
from closedloop_gateway.sends.model import (
    ERASED,
    FAILED,
    FORGOTTEN,
    KIND_PB,
    PAUSED,
    QUEUED,
    SENDING,
    SENT,
    NewSend,
    Outcome,
)
from loopkit.accounts import AccountRegistry
from loopkit.errors import (
    AlreadyExists,
    Conflict,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from loopkit.events import Outbox

IN_DOUBT_MESSAGE = (
    "outcome unknown: the gateway stopped between asking WeChat and recording the answer; "
    "not retried, so the message is never sent twice"
)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_s: float
    max_s: float

    def next_attempt(self, attempts: int, at: datetime) -> datetime:
        """Exponential back-off with jitter, so retries of many sends do not come in waves."""
        delay = min(self.max_s, self.base_s * 2 ** max(0, attempts - 1))
        return at + timedelta(seconds=delay * random.uniform(0.8, 1.2))


class SendService:
    def __init__(
        self,
        outbox: Outbox,
        registry: AccountRegistry,
        *,
        service_window: timedelta,
        retry: RetryPolicy,
    ) -> None:
        self._outbox = outbox
        self._registry = registry
        self._window = service_window
        self.retry = retry

    def _account_id(self, new: NewSend) -> str:
        if new.kind.startswith("official_account"):
            return self._registry.official_account(new.tenant_id, new.account_id).account_id
        corp = self._registry.wecom_corp(new.tenant_id, new.account_id)
        if new.kind == "wecom_member_text" and corp.app() is None:
            raise FailedPrecondition(
                f"corp {corp.corp_id} has no application configured (agent_id and "
                "agent_secret in the account registry): its members cannot be messaged",
                field="wecom_member_text.corp_id",
            )
        return corp.account_id

    async def submit_many(
        self, session: AsyncSession, news: list[NewSend], at: datetime
    ) -> list[tuple[SendRow, bool] | DomainError]:
        """Per send of a tenant's, in order: (its stored send, created) for the existing one or a
        new queued one, or why it is refused. The new ones are stored in one statement
        (INSERT ... ON CONFLICT DO NOTHING: atomic by itself, no race with a concurrent same-key
        insert), known keys read in one more; an item that would be refused gets its error."""
        results: list[tuple[SendRow, bool] | DomainError | None] = [None] * len(news)
        fresh: dict[str, tuple[int, SendRow]] = {}  # key -> its first item and new row
        repeats: list[tuple[int, str, str]] = []  # a key again in this batch: item, key, print
        for i, new in enumerate(news):
            try:
                account_id, fingerprint = self._checked(new)
                if new.kind == "official_account_text":
                    # A repeat is answered with its send even once the window has closed.
                    known = await repository.by_key(session, new.tenant_id, new.idempotency_key)
                    if known is not None:
                        results[i] = (self._same_message(known, fingerprint), False)
                        continue
                    await self._require_window(session, new, account_id, at)
            except DomainError as exc:
                results[i] = exc
                continue
            if new.idempotency_key in fresh:
                repeats.append((i, new.idempotency_key, fingerprint))
            else:
                fresh[new.idempotency_key] = (i, _new_row(new, account_id, fingerprint, at))
        stored = await repository.insert_new(session, [row for _, row in fresh.values()])
        known_keys = [key for key, (_, row) in fresh.items() if row.id not in stored]
        existing = (
            await repository.by_keys(session, news[0].tenant_id, known_keys) if known_keys else {}
        )
        for key, (i, row) in fresh.items():
            if row.id in stored:
                results[i] = (row, True)
            elif key in existing:
                results[i] = self._try_same(existing[key], row.fingerprint)
            else:  # stored and erased meanwhile (a forget): the caller may ask again
                results[i] = Conflict("the send changed while it was stored; retry")
        for i, key, fingerprint in repeats:
            first = results[fresh[key][0]]
            results[i] = (
                self._try_same(first[0], fingerprint) if isinstance(first, tuple) else first
            )
        return [r for r in results if r is not None]

    def _checked(self, new: NewSend) -> tuple[str, str]:
        """The account the send goes through and the message's fingerprint, or why not."""
        if not new.idempotency_key:
            raise InvalidArgument("is required", field="idempotency_key")
        if len(new.idempotency_key) > 200:
            raise InvalidArgument("must be at most 200 characters", field="idempotency_key")
        check_payload(new)
        account_id = self._account_id(new)
        return account_id, new.fingerprint(account_id)

    def _try_same(self, existing: SendRow, fingerprint: str) -> tuple[SendRow, bool] | DomainError:
        try:
            return self._same_message(existing, fingerprint), False
        except AlreadyExists as exc:
            return exc

    @staticmethod
    def _same_message(existing: SendRow, fingerprint: str) -> SendRow:
        if existing.fingerprint != fingerprint:
            raise AlreadyExists(
                "this idempotency key was used for a different message",
                field="idempotency_key",
            )
        return existing

    async def _require_window(
        self, session: AsyncSession, new: NewSend, app_id: str, at: datetime
    ) -> None:
        inside = await interactions.within_window(
            session,
            new.tenant_id,
            app_id,
            openid=str(new.payload.get("openid", "")),
            customer_id=new.customer_id,
            at=at,
            window=self._window,
        )
        if not inside:
            hours = int(self._window.total_seconds() // 3600)
            raise FailedPrecondition(
                f"the follower has not interacted with {app_id} in the last {hours} hours "
                "(WeChat's customer-service window): send a template message instead",
                field="official_account_text",
            )

    async def get(self, session: AsyncSession, tenant_id: str, send_id: str, key: str) -> SendRow:
        if bool(send_id) == bool(key):
            raise InvalidArgument("name a send_id or an idempotency_key", field="send_id")
        row = (
            await repository.by_id(session, send_id)
            if send_id
            else await repository.by_key(session, tenant_id, key)
        )
        if row is None or row.tenant_id != tenant_id:
            raise NotFound("no such send", field="send_id" if send_id else "idempotency_key")
        return row

    async def settle(
        self, session: AsyncSession, send_id: str, holder: str, outcome: Outcome, at: datetime
    ) -> SendRow | None:
        """Record one attempt's outcome (see `settle_many`)."""
        return (await self.settle_many(session, [(send_id, outcome)], holder, at))[0]

    async def settle_many(
        self,
        session: AsyncSession,
        outcomes: list[tuple[str, Outcome]],
        holder: str,
        at: datetime,
    ) -> list[SendRow | None]:
        """Record the outcomes of a batch of attempts: one read of the rows (locked), their
        updates, and the outbox rows of the final ones in one statement. Per send the settled
        row, or None where the claim was lost (another replica took the send over)."""
        rows = await repository.for_settling(session, [send_id for send_id, _ in outcomes])
        settled: list[SendRow | None] = []
        events: list[Envelope] = []
        for send_id, outcome in outcomes:
            row = rows.get(send_id)
            if row is None or row.status != SENDING or row.lease_holder != holder:
                settled.append(None)
                continue
            event = self._apply(row, outcome, at)
            if event is not None:
                events.append(event)
            settled.append(row)
        await session.flush()
        if events:
            await self._outbox.add_many(session, events)
        return settled

    def _apply(self, row: SendRow, outcome: Outcome, at: datetime) -> Envelope | None:
        """The row after the outcome, and the event of a final one."""
        if outcome.called:
            row.attempts += 1
        status = outcome.status
        errmsg = outcome.errmsg
        if status == QUEUED and row.attempts >= self.retry.max_attempts:
            status = FAILED  # retries exhausted: the last transient error is the reason
        if status in (QUEUED, PAUSED) and row.fingerprint == ERASED:
            status, errmsg = FAILED, FORGOTTEN  # erased while in flight: nothing left to send
        row.status = status
        row.errcode = outcome.errcode
        row.errmsg = errmsg[:500]
        row.lease_holder = ""
        row.lease_until = None
        row.next_attempt_at = outcome.next_attempt_at if status in (QUEUED, PAUSED) else None
        if status == SENT:
            row.wechat_msgid = outcome.wechat_msgid
            row.sent_at = at
            return self._outbox.envelope(
                "message.sent",
                tenant_id=row.tenant_id,
                customer_id=row.customer_id,
                payload=ev.MessageSent(
                    send_id=row.id,
                    idempotency_key=row.idempotency_key or "",
                    customer_id=row.customer_id,
                    kind=KIND_PB[row.kind],
                    account_id=row.account_id,
                    wechat_msgid=row.wechat_msgid,
                ),
            )
        if status == FAILED:
            return self._outbox.envelope(
                "message.failed",
                tenant_id=row.tenant_id,
                customer_id=row.customer_id,
                payload=ev.MessageFailed(
                    send_id=row.id,
                    idempotency_key=row.idempotency_key or "",
                    customer_id=row.customer_id,
                    kind=KIND_PB[row.kind],
                    account_id=row.account_id,
                    errcode=row.errcode,
                    errmsg=row.errmsg,
                ),
            )
        return None


def _new_row(new: NewSend, account_id: str, fingerprint: str, at: datetime) -> SendRow:
    return SendRow(
        id=str(ULID()),
        tenant_id=new.tenant_id,
        idempotency_key=new.idempotency_key,
        customer_id=new.customer_id,
        kind=new.kind,
        account_id=account_id,
        payload=dict(new.payload),
        fingerprint=fingerprint,
        status=QUEUED,
        errcode=0,
        errmsg="",
        attempts=0,
        wechat_msgid="",
        lease_holder="",
        lease_until=None,
        next_attempt_at=at,
        created_at=at,
        sent_at=None,
        called_at=None,
    )


def _text(payload: dict[str, Any], field: str, where: str, max_len: int) -> None:
    value = payload.get(field)
    if not value or not str(value).strip():
        raise InvalidArgument("is required", field=f"{where}.{field}")
    if len(str(value)) > max_len:
        raise InvalidArgument(f"must be at most {max_len} characters", field=f"{where}.{field}")


def check_payload(new: NewSend) -> None:
    """The message has what its kind needs, within WeChat's sizes."""
    p, where = new.payload, new.kind
    if new.kind in ("official_account_text", "official_account_template"):
        _text(p, "openid", where, 128)
    if new.kind == "official_account_text":
        _text(p, "text", where, 2048)
    elif new.kind == "official_account_template":
        _text(p, "template_id", where, 128)
        if p.get("url") and not str(p["url"]).startswith(("http://", "https://")):
            raise InvalidArgument("must be an http(s) URL", field=f"{where}.url")
    elif new.kind == "wecom_member_text":
        _text(p, "userid", where, 64)
        _text(p, "text", where, 2048)
    elif new.kind == "wecom_welcome":
        _text(p, "welcome_code", where, 256)
        _text(p, "text", where, 4000)
    else:
        _text(p, "sender_userid", where, 64)
        _text(p, "text", where, 4000)
        recipients = list(p.get("external_userids", []))
        if not recipients or len(recipients) > 10_000:
            raise InvalidArgument("name 1 to 10,000 recipients", field=f"{where}.external_userids")
