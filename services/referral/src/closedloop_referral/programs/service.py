"""Programs, codes, shares and visits. Callers own the transaction; nothing here commits."""

from __future__ import annotations

import secrets
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from closedloop.common.v1 import common_pb2
from closedloop.events.v1 import referral_events_pb2 as ev
from closedloop_referral.clock import utc_or_none
from closedloop_referral.models import CodeRow, ProgramRow, ShareRow, VisitRow
from closedloop_referral.programs.model import TARGETS, ProgramSpec
from closedloop_referral.programs.repository import ProgramRepository
from closedloop_referral.programs.views import CodeResult, ProgramView, SharedLink, VisitResult
from loopkit.customers import CustomerDirectory
from loopkit.errors import InvalidArgument, NotFound
from loopkit.events import Outbox
from loopkit.views import view_of

# No 0/O/1/I/L: codes are read aloud and typed from posters.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
_TARGETS = {"moment": ev.SHARE_TARGET_MOMENT, "chat": ev.SHARE_TARGET_CHAT}


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def looks_like_code(code: str) -> bool:
    return len(code) == CODE_LENGTH and all(ch in CODE_ALPHABET for ch in code)


def is_active(program: ProgramRow, at: datetime) -> bool:
    starts, ends = utc_or_none(program.starts_at), utc_or_none(program.ends_at)
    return (starts is None or starts <= at) and (ends is None or at < ends)


def landing_url_with_code(landing_url: str, code: str) -> str:
    """The landing page URL with `ref=CODE` added (replacing any ref it had)."""
    parts = urlsplit(landing_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "ref"]
    query.append(("ref", code))
    return urlunsplit(parts._replace(query=urlencode(query)))


class ProgramService:
    def __init__(
        self,
        outbox: Outbox,
        directory: CustomerDirectory,
        public_base_url: str,
        repository: ProgramRepository,
    ) -> None:
        self._outbox = outbox
        self._directory = directory
        self._base = public_base_url.rstrip("/")
        self._repo = repository

    def share_url(self, code: str, share_id: str = "") -> str:
        url = f"{self._base}/r/{code}"
        return f"{url}?s={share_id}" if share_id else url

    async def create(self, session: AsyncSession, spec: ProgramSpec, at: datetime) -> ProgramView:
        spec.check()
        r, n = spec.referrer_reward, spec.newcomer_reward
        row = ProgramRow(
            id=str(ULID()),
            tenant_id=spec.tenant_id,
            name=spec.name.strip(),
            referrer_kind=r.kind,
            referrer_points=r.points if r.kind == "points" else 0,
            referrer_coupon=r.coupon_template_id if r.kind == "coupon" else "",
            referrer_cash_minor=r.cash_minor if r.kind == "cash" else 0,
            trigger=spec.trigger,
            min_order_minor=spec.min_order_minor,
            currency=(spec.currency or "CNY").upper(),
            newcomer_kind=n.kind,
            newcomer_points=n.points if n.kind == "points" else 0,
            newcomer_coupon=n.coupon_template_id if n.kind == "coupon" else "",
            newcomer_cash_minor=n.cash_minor if n.kind == "cash" else 0,
            cap_per_period=spec.cap_per_period,
            cap_period_days=spec.cap_period_days,
            levels=spec.levels,
            level2_percent=spec.level2_percent if spec.levels == 2 else 0,
            hold_seconds=spec.hold_seconds,
            attribution_window_seconds=spec.attribution_window_seconds,
            channel_id=spec.channel_id,
            campaign_id=spec.campaign_id,
            landing_url=spec.landing_url,
            starts_at=spec.starts_at,
            ends_at=spec.ends_at,
            created_at=at,
        )
        await self._repo.add(session, row)
        return view_of(ProgramView, row)

    async def get(self, session: AsyncSession, tenant_id: str, program_id: str) -> ProgramView:
        return view_of(ProgramView, await self.program(session, tenant_id, program_id))

    async def program(self, session: AsyncSession, tenant_id: str, program_id: str) -> ProgramRow:
        """The tenant's program (for the domain; transports get `get`'s view)."""
        if not program_id:
            raise InvalidArgument("a program id is required", field="program_id")
        row = await self._repo.program(session, program_id)
        if row is None or row.tenant_id != tenant_id:
            raise NotFound(f"no program {program_id}", field="program_id")
        return row

    async def _code_of_tenant(self, session: AsyncSession, tenant_id: str, code: str) -> CodeRow:
        row = await self._repo.code(session, code.upper()) if code else None
        if row is None or row.tenant_id != tenant_id:
            raise NotFound(f"no referral code {code}", field="code")
        return row

    async def create_code(
        self,
        session: AsyncSession,
        tenant_id: str,
        customer_id: str,
        program_id: str,
        *,
        device_id: str,
        at: datetime,
    ) -> CodeResult:
        row, created = await self._code(
            session, tenant_id, customer_id, program_id, device_id=device_id, at=at
        )
        return CodeResult(row.code, self.share_url(row.code), created)

    async def _code(
        self,
        session: AsyncSession,
        tenant_id: str,
        customer_id: str,
        program_id: str,
        *,
        device_id: str,
        at: datetime,
    ) -> tuple[CodeRow, bool]:
        if not customer_id:
            raise InvalidArgument("a customer id is required", field="customer_id")
        if len(device_id) > 128:
            raise InvalidArgument("too long", field="device_id")
        program = await self.program(session, tenant_id, program_id)
        # The live id (a merged customer's survivor); NotFound for someone identity never met.
        customer_id = await self._directory.current_id(tenant_id, customer_id)
        existing = await self._repo.primary_code(session, tenant_id, customer_id, program.id)
        if existing is not None:
            if device_id and not existing.device_id:
                existing.device_id = device_id
            return existing, False
        row = CodeRow(
            code=new_code(),
            tenant_id=tenant_id,
            program_id=program.id,
            customer_id=customer_id,
            slot="",
            device_id=device_id,
            created_at=at,
        )
        await self._repo.add(session, row)
        return row, True

    async def record_share(
        self,
        session: AsyncSession,
        tenant_id: str,
        customer_id: str,
        *,
        code: str,
        program_id: str,
        content_id: str,
        target: str,
        at: datetime,
    ) -> SharedLink:
        if not customer_id:
            raise InvalidArgument("a customer id is required", field="customer_id")
        if target not in TARGETS:
            raise InvalidArgument("target must be moment, chat or group", field="target")
        if not content_id or len(content_id) > 200:
            raise InvalidArgument(
                "a content id of 1..200 characters is required", field="content_id"
            )
        if code:
            code_row = await self._code_of_tenant(session, tenant_id, code)
            if code_row.customer_id != customer_id:
                current = await self._directory.current_id(tenant_id, customer_id)
                if code_row.customer_id != current:
                    raise InvalidArgument("the code belongs to another customer", field="code")
        else:
            code_row, _ = await self._code(
                session, tenant_id, customer_id, program_id, device_id="", at=at
            )
        share = ShareRow(
            id=str(ULID()),
            tenant_id=tenant_id,
            program_id=code_row.program_id,
            code=code_row.code,
            customer_id=code_row.customer_id,
            content_id=content_id,
            target=target,
            at=at,
        )
        self._repo.add_unflushed(session, share)
        await self._outbox.emit(
            session,
            "share.recorded",
            tenant_id=tenant_id,
            customer_id=code_row.customer_id,
            payload=ev.ShareRecorded(
                share_id=share.id,
                code=share.code,
                content_id=content_id,
                target=_TARGETS.get(target, ev.SHARE_TARGET_GROUP),
            ),
        )
        return SharedLink(share.id, share.code, self.share_url(share.code, share.id))

    async def record_visit(
        self,
        session: AsyncSession,
        code: str,
        *,
        openid: str,
        appid: str,
        device_id: str,
        share_id: str,
        at: datetime,
    ) -> VisitResult:
        """A share link opened: the visit is kept and `share_visited` published (acquisition
        records it as a touch on the program's referral channel)."""
        code = code.upper()
        # Held: a merge or forget of the referrer waits for this visit, so it moves it too.
        row = await self._repo.code(session, code, hold=True) if looks_like_code(code) else None
        if row is None:
            raise NotFound("unknown referral code", field="code")
        program = await self._repo.program(session, row.program_id)
        if program is None:
            raise NotFound("unknown referral code", field="code")
        if share_id:
            share = await self._repo.share(session, share_id[:26])
            share_id = share.id if share is not None and share.code == row.code else ""
        active = is_active(program, at)
        visit = VisitRow(
            id=str(ULID()),
            tenant_id=row.tenant_id,
            program_id=program.id,
            code=row.code,
            share_id=share_id,
            referrer_id=row.customer_id,
            visitor_customer_id="",
            visitor_openid=openid[:128],
            visitor_appid=appid[:64],
            device_id=device_id[:128],
            program_active=active,
            at=at,
        )
        self._repo.add_unflushed(session, visit)
        identities = []
        if openid and appid:
            identities.append(
                common_pb2.Identity(
                    kind=common_pb2.IDENTITY_KIND_WECHAT_OPENID, scope=appid, value=openid
                )
            )
        await self._outbox.emit(
            session,
            "share_visited",
            tenant_id=row.tenant_id,
            customer_id="",
            payload=ev.ShareVisited(
                visit_id=visit.id,
                code=row.code,
                program_id=program.id,
                referrer_customer_id=row.customer_id,
                channel_id=program.channel_id,
                campaign_id=program.campaign_id,
                visitor_identities=identities,
                share_id=share_id,
            ),
        )
        return VisitResult(active, landing_url_with_code(program.landing_url, row.code))
