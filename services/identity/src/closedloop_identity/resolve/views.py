"""What ResolveCustomer hands back."""

from __future__ import annotations

from dataclasses import dataclass, field

from closedloop_identity.customers.views import CustomerView


@dataclass
class Resolution:
    customer: CustomerView
    created: bool
    merged_ids: list[str]
    # The data key a creating resolve wrote with the customer (loopkit.pii), for the caller.
    key: bytes = field(default=b"", repr=False)
