"""The person behind a friend-add, from WeCom's own record of the contact."""

from __future__ import annotations

import dataclasses
import logging

from closedloop_conversion.ownership.changes import ContactChange
from loopkit.customers import CustomerDirectory
from loopkit.errors import DomainError, FailedPrecondition
from loopkit.wechat.wecom import ContactLookup

log = logging.getLogger(__name__)


async def with_wecom_record(
    contacts: ContactLookup, tenant: str, change: ContactChange
) -> ContactChange:
    """The change with the unionid WeCom gives for the contact, marked verified: it comes from
    WeChat's data, not from anything a caller claims, so identity may join the official account's
    follower and the WeCom friend into one customer.

    A contact WeCom does not know (or will not show) keeps the callback's data; an unreachable
    gateway raises DependencyUnavailable, so the callback is answered 503 and WeCom retries it.
    """
    try:
        contact = await contacts.external_contact(tenant, change.corp_id, change.external_userid)
    except DomainError as exc:
        log.warning("no WeCom record of the new contact of %s: %s", change.corp_id, exc)
        return change
    if not contact.unionid:
        return change
    return dataclasses.replace(change, unionid=contact.unionid, unionid_verified=True)


async def customer_of_new_contact(
    directory: CustomerDirectory,
    contacts: ContactLookup | None,
    tenant: str,
    change: ContactChange,
) -> tuple[ContactChange, str]:
    """The change (with WeCom's record when a gateway is there) and identity's customer id for
    the new contact. Runs before the unit of work, so no transaction waits on the network."""
    if contacts is not None:
        change = await with_wecom_record(contacts, tenant, change)
    try:
        resolved = await directory.resolve(tenant, change.identities, actor="conversion.wecom")
    except FailedPrecondition:
        # The unionid and the WeCom id belong to customers the tenant's policy will not merge:
        # keep the friendship on the WeCom id's customer; ops can merge.
        resolved = await directory.resolve(tenant, change.identities[:1], actor="conversion.wecom")
    return change, resolved.customer_id
