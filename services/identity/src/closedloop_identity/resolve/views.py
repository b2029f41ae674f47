"""What ResolveCustomer hands back."""

from __future__ import annotations

from dataclasses import dataclass

from closedloop_identity.customers.views import CustomerView


@dataclass
class Resolution:
    customer: CustomerView
    created: bool
    merged_ids: list[str]
