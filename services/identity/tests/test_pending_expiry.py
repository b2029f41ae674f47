"""A WeCom pending id older than 90 days names nobody any more (domain level, injected clock)."""

from datetime import UTC, datetime, timedelta

import pytest

from closedloop_identity.customers.identities import ClaimedIdentity, IdentityKey, Kind
from closedloop_identity.main import use_cases
from loopkit.db import transact

PENDING = ClaimedIdentity(IdentityKey(Kind.WECOM_PENDING_ID, "corp", "p-1"))


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.parametrize("days, same", [(89, True), (91, False)])
async def test_pending_id_expires_after_90_days(identity, days, same):
    clock = Clock()
    service = use_cases(identity.runtime.outbox, clock).resolve
    sessions = identity.runtime.sessions
    first = await transact(sessions, lambda s: service.resolve(s, "t-exp", [PENDING], {}, "t"))
    clock.now += timedelta(days=days)
    later = await transact(sessions, lambda s: service.resolve(s, "t-exp", [PENDING], {}, "t"))
    assert (later.customer.customer_id == first.customer.customer_id) is same
    assert later.created is not same
