"""Input that once answered 500 (and dropped the kept-alive connection) gets a 4xx with a reason:
a correctly signed WeCom callback with an absurd timestamp, a legacy encoding, and a chat
archive nested thousands of levels deep."""

from __future__ import annotations

import httpx

from conversion_helpers import CORP, contact_change, signed_callback


async def test_hostile_callbacks_and_archives_get_a_reason_not_a_500(conversion, tenant):
    change = contact_change("add_external_contact", "zhangsan", "wm-hostile")
    callback = f"/v1/wecom/{CORP}/callback"
    async with httpx.AsyncClient(
        base_url=conversion.http_url, headers=conversion.headers()
    ) as client:
        params, body = signed_callback(change, timestamp=10**300)
        huge_timestamp = await client.post(callback, params=params, content=body)
        params, body = signed_callback(change)
        gbk = await client.post(
            callback, params=params, content=b'<?xml version="1.0" encoding="gbk"?>' + body
        )
        nested = b'{"messages": ' + b"[" * 5000 + b"]" * 5000 + b"}"
        deep = await client.post(f"/v1/tenants/{tenant}/chat-archive", content=nested)
        # The kept-alive connection still serves the next request.
        fine = await client.post(f"/v1/tenants/{tenant}/chat-archive", json={"messages": []})
    assert huge_timestamp.status_code == 403, huge_timestamp.text
    assert "timestamp" in huge_timestamp.json()["error"]
    assert gbk.status_code == 400 and "encoding" in gbk.json()["error"], gbk.text
    assert deep.status_code == 400, deep.text
    assert deep.json() == {"error": "JSON nested deeper than 32 levels", "field": "body"}
    assert fine.status_code == 200, fine.text
