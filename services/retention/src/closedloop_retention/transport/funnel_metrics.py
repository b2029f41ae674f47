"""The per-tenant funnel gauges on /metrics: a periodic worker (`loopkit.periodic`) reads the
funnel read model in SQL (one GROUP BY over the trailing window, the busiest tenants only) and
sets `closedloop_funnel_customers{tenant, step}`."""

from __future__ import annotations

from datetime import timedelta

from closedloop_retention import metrics
from closedloop_retention.clock import now
from closedloop_retention.funnel.service import FunnelService
from loopkit.uow import UnitOfWork


class FunnelMetrics:
    def __init__(
        self, uow: UnitOfWork, funnel: FunnelService, *, window: timedelta, max_tenants: int
    ) -> None:
        self._uow = uow
        self._funnel = funnel
        self._window = window
        self._max_tenants = max_tenants
        # Series this process has set: a tenant that drops out of the busiest goes to 0 rather
        # than keeping a stale value (a gauge keeps its last value per label set).
        self._shown: set[tuple[str, str]] = set()

    async def refresh(self) -> int:
        """Sets the gauges; returns how many tenants they show."""
        end = now()
        start = end - self._window
        found, tenants = await self._uow.run(
            lambda s: self._funnel.tenant_steps(s, start, end, self._max_tenants)
        )
        shown: set[tuple[str, str]] = set()
        for tenant, steps in found.items():
            for step, n in steps.items():
                metrics.funnel_customers.set(n, {"tenant": tenant, "step": step})
                shown.add((tenant, step))
        for tenant, step in self._shown - shown:
            metrics.funnel_customers.set(0, {"tenant": tenant, "step": step})
        self._shown = shown
        metrics.funnel_tenants_left_out.set(max(0, tenants - len(found)))
        return len(found)
