"""The common resolves reach the database in one statement each (two to attach): the hot path of
every scan and form post. Counted on the unit of work's own connection."""

import uuid
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_identity.customers.identities import ClaimedIdentity, IdentityKey, Kind
from closedloop_identity.main import use_cases
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
    service = use_cases(identity.runtime.outbox).resolve
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
    return result, len(statements)


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
