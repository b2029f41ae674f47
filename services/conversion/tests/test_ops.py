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
