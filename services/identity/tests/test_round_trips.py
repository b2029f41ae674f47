"""The common resolves reach the database in one statement each (two to attach): the hot path of
every scan and form post. Counted on the unit of work's own connection."""

import uuid
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_identity.customers.identities import ClaimedIdentity, IdentityKey, Kind
from closedloop_identity.main import use_cases
from closedloop_identity.resolve.service import ResolveService
from closedloop_identity.resolve.views import Resolution
from loopkit.db import transact

# Statements per resolve: (new customer, repeat, attach a second identity). SQLite runs the same
# steps as several local statements (a new customer: customer, identities, audit, outbox, data key
# and the first look); its writers are serialised, so there is no round trip to save.
EXPECTED = {"postgresql": (1, 1, 2), "sqlite": (6, 4, 8)}


def _openid(value: str) -> ClaimedIdentity:
    return ClaimedIdentity(IdentityKey(Kind.WECHAT_OPENID, "wx-app", value))


def _unionid(value: str) -> ClaimedIdentity:
    return ClaimedIdentity(IdentityKey(Kind.WECHAT_UNIONID, "", value), verified=True)


async def _counted(
    identity, tenant: str, claims: list[ClaimedIdentity], *, direct: bool = True
) -> tuple[Resolution, int]:
    """Resolve as the servicer does: directly without a transaction, or (`direct=False`) the whole
    resolve in one transaction."""
    result, statements = await _resolved(identity, None, tenant, claims, direct=direct)
    return result, len(statements)


async def _resolved(
    identity,
    service: ResolveService | None,
    tenant: str,
    claims: list[ClaimedIdentity],
    *,
    direct: bool = True,
) -> tuple[Resolution, list[str]]:
    """`_counted` with the statements themselves, by `service` (a new one when None)."""
    service = service or use_cases(identity.runtime.outbox).resolve
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    async def work(session: AsyncSession) -> Resolution:
        conn = (await session.connection()).sync_connection
        assert conn is not None
        event.listen(conn, "before_cursor_execute", count)
        try:
            if direct:
                found = await service.resolve_directly(session, tenant, claims, {}, "test")
                assert found is not None, "the direct path declined"
                return found
            return await service.resolve(session, tenant, claims, {}, "test")
        finally:
            event.remove(conn, "before_cursor_execute", count)

    result = await transact(identity.runtime.sessions, work, autocommit=direct)
    return result, statements


async def test_new_repeat_and_attach_resolves_take_one_or_two_statements(identity):
    dialect = identity.runtime.engine.dialect.name
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    new, created = await _counted(identity, tenant, [_openid("o-1")])
    again, repeated = await _counted(identity, tenant, [_openid("o-1")])
    attached, extended = await _counted(identity, tenant, [_openid("o-1"), _unionid("u-1")])
    assert new.created and not again.created and not attached.created
    assert again.customer.customer_id == attached.customer.customer_id == new.customer.customer_id
    assert [i.key.value for i in attached.customer.identities] == ["o-1", "u-1"]
    assert (created, repeated, extended) == EXPECTED[dialect]


async def test_a_possible_merge_takes_the_locking_path(identity):
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    await _counted(identity, tenant, [_openid("o-1")])
    await _counted(identity, tenant, [_unionid("u-1")])
    merged, statements = await _counted(
        identity, tenant, [_openid("o-1"), _unionid("u-1")], direct=False
    )
    assert len(merged.merged_ids) == 1
    assert statements > EXPECTED[identity.runtime.engine.dialect.name][2]


async def test_a_repeat_resolve_sends_no_creation_and_a_forgotten_claim_creates_again(identity):
    """A resolve of claims the service saw held looks them up without the rows of a creation;
    when they are no longer held (the customer was forgotten), it creates after all."""
    cases = use_cases(identity.runtime.outbox)
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    claim = [_openid("o-1")]
    new, _ = await _resolved(identity, cases.resolve, tenant, claim)
    again, statements = await _resolved(identity, cases.resolve, tenant, claim)
    assert not again.created and again.customer.customer_id == new.customer.customer_id
    dialect = identity.runtime.engine.dialect.name
    assert len(statements) == EXPECTED[dialect][1]
    assert not any("INSERT" in s.upper() for s in statements), statements
    await transact(
        identity.runtime.sessions,
        lambda s: cases.erasure.forget(s, tenant, new.customer.customer_id, "test", "asked"),
    )
    anew, statements = await _resolved(identity, cases.resolve, tenant, claim)
    assert anew.created and anew.customer.customer_id != new.customer.customer_id
    if dialect == "postgresql":
        assert len(statements) == 2  # the lean look, then the one that creates


def test_the_held_claims_hint_keeps_no_identity_value():
    """The hint lives as long as the process: it must not keep an erased customer's phone."""
    from closedloop_identity.resolve.service import HeldClaims

    held = HeldClaims(size=2)
    phone = IdentityKey(Kind.PHONE, "", "+8613800138000")
    held.add("t1", [phone])
    assert held.all_held("t1", [phone])
    assert not held.all_held("t2", [phone])
    assert "13800138000" not in repr(vars(held))
    held.add("t1", [IdentityKey(Kind.PHONE, "", f"+86138{n:08d}") for n in range(2)])
    assert not held.all_held("t1", [phone])  # the oldest forgotten first
