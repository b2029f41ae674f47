"""Who a touch or lead belongs to, asked of identity outside any transaction (no database
transaction waits on the network: callers resolve first, then write in one unit of work)."""

from __future__ import annotations

from collections.abc import Sequence

from loopkit.customers import CustomerDirectory, IdentityValue, ResolvedCustomer
from loopkit.errors import InvalidArgument, NotFound


class Customers:
    def __init__(self, directory: CustomerDirectory) -> None:
        self._directory = directory

    async def resolve(
        self,
        tenant_id: str,
        identities: Sequence[IdentityValue],
        *,
        fields: Sequence[str] = (),
    ) -> ResolvedCustomer | None:
        """The customer of these identities (None when there are none: an anonymous touch).

        An identity identity refuses (an invalid phone) comes back naming the form field in
        `fields` at the same position, or `identities[n]` for the others.
        """
        if not identities:
            return None
        try:
            return await self._directory.resolve(tenant_id, identities, actor="acquisition")
        except InvalidArgument as exc:
            raise _name_field(exc, fields) from None

    async def live_referrer(self, tenant_id: str, customer_id: str) -> str:
        """The live id of the referrer `customer_id` names: the survivor when identity merged
        them into another customer (an event naming a referrer may arrive after the merge,
        whose move of the touches and leads has then passed), "" when identity no longer
        knows them (forgotten, or never a customer)."""
        if not customer_id:
            return ""
        try:
            return await self._directory.current_id(tenant_id, customer_id)
        except (NotFound, InvalidArgument):
            return ""


def _name_field(exc: InvalidArgument, fields: Sequence[str]) -> InvalidArgument:
    where = exc.field or ""
    if where.startswith("identities["):
        index = int(where[len("identities[") : where.index("]")])
        if index < len(fields):
            return InvalidArgument(exc.reason, field=f"values.{fields[index]}")
        return InvalidArgument(exc.reason, field=f"identities[{index - len(fields)}]")
    return exc
