"""Who may call each HTTP route: every route a service serves is one of

- a signed WeChat or WeCom callback (the signature is the credential),
- a form: the landing page, its WeChat sign-in redirect and its submissions (anyone, by design),
- a link handed to a person: a share link (/r) or a signed unsubscribe link (/u),
- an API route that needs an API key bound to its tenant (401 without, 403 for another tenant
  or a read-only key; tests/test_tenant_keys.py calls it),
- an ops route (health, readiness, metrics, the OpenAPI document), which the chart's Ingress
  never routes (scraped and probed inside the cluster).

A new route fails here until it is given one of these places, so no edge is left open by accident.
"""

from __future__ import annotations

import copy

import yaml
from helm_chart_helpers import CHART, production_values, render
from test_openapi_fuzz import SCHEMAS

CALLBACK, FORM, LINK, API_KEY, OPS = "callback", "form", "link", "api key", "ops"
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/v1/wechat/{app_id}/callback"): CALLBACK,
    ("POST", "/v1/wechat/{app_id}/callback"): CALLBACK,
    ("GET", "/v1/wecom/{corp_id}/callback"): CALLBACK,
    ("POST", "/v1/wecom/{corp_id}/callback"): CALLBACK,
    ("GET", "/p/{page_id}"): FORM,
    ("GET", "/p/{page_id}/oauth"): FORM,
    ("POST", "/v1/forms/{page_id}/submissions"): FORM,
    ("GET", "/r/{code}"): LINK,
    ("GET", "/u/{token}"): LINK,
    ("POST", "/u/{token}"): LINK,
    ("POST", "/v1/tenants/{tenant_id}/chat-archive"): API_KEY,
    ("GET", "/healthz"): OPS,
    ("GET", "/readyz"): OPS,
    ("GET", "/metrics"): OPS,
}
# The documents the services serve (test_openapi_fuzz checks they are the ones served).
DOCUMENTS = {name: schema.raw_schema for name, schema in SCHEMAS.items()}


def _served() -> dict[tuple[str, str], tuple[str, dict]]:  # type: ignore[type-arg]
    return {
        (method.upper(), path): (service, operation)
        for service, document in DOCUMENTS.items()
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }


def test_every_http_route_of_every_service_has_a_known_kind_of_caller() -> None:
    served = _served()
    unplaced = sorted(f"{s}: {m} {p}" for (m, p), (s, _) in served.items() if (m, p) not in ROUTES)
    assert not unplaced, (
        "routes with no decided caller: a route for the platform's clients needs an API key for"
        f" its tenant (loopkit.callers.KeyStore.authorize), then a place in ROUTES: {unplaced}"
    )
    # Every service answers its ops routes; nothing listed here is gone unnoticed.
    assert set(ROUTES) == set(served)


def test_api_key_routes_document_the_key_and_its_refusals() -> None:
    for (method, path), (service, operation) in _served().items():
        if ROUTES[(method, path)] != API_KEY:
            continue
        assert operation.get("security"), (service, method, path)
        assert {"401", "403"} <= set(operation["responses"]), (service, method, path)


def test_the_ingress_routes_no_ops_route_and_api_routes_only_as_api_paths() -> None:
    rendered = render(copy.deepcopy(production_values()))
    routed: dict[str, set[str]] = {"public": set(), "api": set()}
    for svc in yaml.safe_load((CHART / "values.yaml").read_text())["services"].values():
        routed["public"] |= set(svc.get("publicPaths") or [])
        routed["api"] |= set(svc.get("apiPaths") or [])
    ingress_paths = {
        p["path"]
        for ingress in rendered.of_kind("Ingress")
        for rule in ingress["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    assert ingress_paths == routed["public"] | routed["api"]

    def under(path: str, prefixes: set[str]) -> bool:
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)

    for (method, path), kind in ROUTES.items():
        if kind == OPS:
            assert not under(path, ingress_paths), f"{method} {path} is ops-only"
        elif kind == API_KEY:
            assert under(path, routed["api"]) and not under(path, routed["public"]), path
        else:
            assert under(path, routed["public"]), f"{method} {path} is not routed"
