"""What the OpenAPI documents of the public HTTP edges say, in one vocabulary.

The edges read their bodies themselves (a size cap, a depth limit, XML or JSON), so FastAPI cannot
infer a request body or the statuses they answer: each route names them here. `answers(...)` is
its `responses=`, `json_body`/`xml_body` its request body (`openapi_extra=`), and `API_KEY` the
security requirement of a route that needs an API key. tests/test_openapi_fuzz.py holds every
service to its document with schemathesis.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from loopkit.outages import RETRY_AFTER_S


class ErrorReason(BaseModel):
    """The body of every 4xx/503 an edge answers (`loopkit.http_edge.error_response`)."""

    error: str = Field(description="why, in words a developer can act on")
    field: str | None = Field(description="the input at fault (a body member, header or query)")


_REASONS = {
    400: "bad input: unparseable, wrong shape, too deep, or a value the call refuses",
    401: "no API key, or an unknown or revoked one (`authorization: Bearer clk_…`)",
    403: "a wrong signature, or an API key not for this tenant or only for reading",
    404: "no such account, corp, page or link",
    409: "conflicts with the state of what it names (a channel outside its schedule)",
    413: "the body is larger than this edge takes",
    415: "a body in a media type this edge does not read",
    422: "a parameter of the wrong type",
    429: "too many requests; retry after the time in Retry-After",
    503: "a dependency (database, identity, NATS) is away; retry after Retry-After seconds",
}
RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": f"seconds to wait before retrying ({RETRY_AFTER_S} on the JSON edges)",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
        "required": True,
    }
}
# A control character (NUL breaks PostgreSQL) in a text value is refused; this says so in schemas.
NO_CONTROL_CHARACTERS = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f]*$"
TENANT_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# The OpenAPI security scheme of API keys (components.securitySchemes), see loopkit.callers.
API_KEY_SCHEME = "apiKey"
API_KEY_SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "an API key `clk_<id>.<secret>` bound to tenants and a role (read/write)",
}
API_KEY: dict[str, Any] = {"security": [{API_KEY_SCHEME: []}]}


def answers(
    ok: Mapping[int | str, dict[str, Any]], *statuses: int, media_type: str = "application/json"
) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a route: its successful answers `ok`, and each error status in `statuses`
    with the `ErrorReason` body (429/503 also with Retry-After) — or, for an HTML page that
    answers errors as pages, in `media_type`."""
    out: dict[int | str, dict[str, Any]] = dict(ok)
    for status in statuses:
        entry: dict[str, Any] = {"description": _REASONS[status]}
        if media_type == "application/json":
            entry["model"] = ErrorReason
        else:
            entry["content"] = {media_type: {"schema": {"type": "string"}}}
        if status in (429, 503):
            entry["headers"] = RETRY_AFTER_HEADER
        out[status] = entry
    return out


def text_answer(description: str, media_type: str = "text/plain") -> dict[str, Any]:
    """A successful answer that is text (a callback's `success`, an HTML page)."""
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def redirect(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"Location": {"schema": {"type": "string"}, "required": True}},
    }


def json_body(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    """`openapi_extra=` of a route that reads a JSON body itself."""
    return {
        "requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}
    }


def xml_body(properties: dict[str, Any], description: str) -> dict[str, Any]:
    """`openapi_extra=` of a WeChat/WeCom callback: a flat `<xml>` element of text members."""
    schema = {
        "type": "object",
        "xml": {"name": "xml"},
        "properties": properties,
    }
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/xml": {"schema": schema}},
        }
    }


def string(max_length: int, description: str = "", **extra: Any) -> dict[str, Any]:
    """A text value as the edges check it: at most `max_length` characters, no control ones."""
    schema: dict[str, Any] = {
        "type": "string",
        "maxLength": max_length,
        "pattern": NO_CONTROL_CHARACTERS,
        **extra,
    }
    if description:
        schema["description"] = description
    return schema
