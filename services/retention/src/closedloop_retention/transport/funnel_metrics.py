"""The per-tenant funnel gauges on /metrics: a periodic worker (`loopkit.periodic`) reads the
funnel read model in SQL (one GROUP BY over the trailing window, the busiest tenants only) and
sets `closedloop_funnel_customers{tenant, step}`.

One replica computes them: the worker runs only in the process serving /metrics (worker 0 of a
multi-worker pod), and each round first asks a `loopkit.leases.ReplicaLease`, which one of those
processes holds at a time (another takes it when the holder drains or dies). The others show no
series, or zeros once they held it before; the dashboards take the max across pods."""

from __future__ import annotations

from datetime import timedelta

from closedloop_retention import metrics
from closedloop_retention.clock import now
from closedloop_retention.funnel.service import FunnelService
from loopkit.leases import ReplicaLease
from loopkit.uow import UnitOfWork


class FunnelMetrics:
    def __init__(
        self,
        uow: UnitOfWork,
        funnel: FunnelService,
        *,
        window: timedelta,
        max_tenants: int,
        lease: ReplicaLease | None = None,
    ) -> None:
        self._uow = uow
        self._funnel = funnel
        self._window = window
        self._max_tenants = max_tenants
        # None: every process that refreshes computes (a test's single service).
        self.lease = lease
        # Series this process has set: a tenant that drops out of the busiest goes to 0 rather
        # than keeping a stale value (a gauge keeps its last value per label set).
        self._shown: set[tuple[str, str]] = set()
        self._left_out_shown = False  # this process has set closedloop_funnel_tenants_left_out

    async def refresh(self) -> int:
        """Sets the gauges when this replica holds the lease; returns how many tenants they
        show (0 on a replica that does not compute them)."""
        if self.lease is not None and not await self.lease.held():
            # Another replica shows them: what this one showed before goes to 0, not stale.
            self._show({})
            if self._left_out_shown:
                metrics.funnel_tenants_left_out.set(0)
                self._left_out_shown = False
            return 0
        end = now()
        start = end - self._window
        # A read: on SQLite `run` would take the write lock every round (BEGIN IMMEDIATE),
        # queueing behind the consumers' batches (a round failed with 'database is locked' after
        # the 30 s busy timeout, the gauges stale meanwhile) and holding them up while it reads.
        found, tenants = await self._uow.read(
            lambda s: self._funnel.tenant_steps(s, start, end, self._max_tenants)
        )
        self._show(found)
        metrics.funnel_tenants_left_out.set(max(0, tenants - len(found)))
        self._left_out_shown = True
        return len(found)

    def _show(self, found: dict[str, dict[str, int]]) -> None:
        shown: set[tuple[str, str]] = set()
        for tenant, steps in found.items():
            for step, n in steps.items():
                metrics.funnel_customers.set(n, {"tenant": tenant, "step": step})
                shown.add((tenant, step))
        for tenant, step in self._shown - shown:
            metrics.funnel_customers.set(0, {"tenant": tenant, "step": step})
        self._shown = shown
