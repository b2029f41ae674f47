"""Erasure on customer.forgotten: personal data of the customer goes, aggregates stay."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from closedloop_conversion.common import now
from closedloop_conversion.notices import repository as notice_repo
from closedloop_conversion.ownership.repository import OwnershipRepository
from closedloop_conversion.pipeline.repository import PipelineRepository
from closedloop_conversion.tasks import repository as task_repo

_ownerships = OwnershipRepository()
_pipeline = PipelineRepository()


async def erase_customers(session: AsyncSession, tenant: str, customer_ids: Sequence[str]) -> None:
    ids = list(customer_ids)
    if not ids:
        return
    await _pipeline.blank_follow_up_summaries(session, tenant, ids)
    await _ownerships.forget_contacts(session, tenant, ids, now())
    # A notice not yet sent about a task that goes away is not sent (its text names the task).
    await notice_repo.forget_tasks(session, tenant, await task_repo.open_ids(session, tenant, ids))
    await task_repo.forget(session, tenant, ids)
