"""Health, readiness and the business metrics on the HTTP side."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize("conversion", ["sqlite"], indirect=True)
async def test_health_readiness_and_business_metrics(conversion):
    async with httpx.AsyncClient(base_url=conversion.http_url) as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
        metrics = (await client.get("/metrics")).text
    assert health.json() == {"status": "ok", "service": "conversion"}
    assert ready.status_code == 200
    # Exported from the start, at 0, so dashboards show 0 instead of "no data".
    assert "closedloop_leads_assigned_total{" in metrics and 'rule="least_loaded"' in metrics
    assert "closedloop_orders_paid_total{" in metrics and 'repeat="true"' in metrics
    assert "closedloop_followups_logged_total{" in metrics and 'kind="moments_like"' in metrics


async def test_a_started_service_has_set_its_start_up_heap_aside(conversion):
    """Start-up's objects are frozen out of the collector and it runs less often
    (`loopkit.runtime.settle_heap`): full collections no longer walk the modules and mappers."""
    import gc

    from loopkit.runtime import GC_THRESHOLDS

    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == GC_THRESHOLDS
