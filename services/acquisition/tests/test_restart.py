"""The callback answers while identity is away; stored messages are processed after a restart."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

import closedloop_identity.main
from acquisition_helpers import AES_KEY, TOKEN, Env, database, event_xml, safe_post
from closedloop_acquisition.main import DEFINITION
from loopkit_dev.natsserver import NatsServer, free_port
from loopkit_dev.testing import eventually, running_service


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_messages_stored_while_identity_is_down_survive_a_restart(
    backend: str, request: pytest.FixtureRequest, nats_server: NatsServer, tmp_path: Path
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    app_id = "wxrestart0000000001"
    app = {"app_id": app_id, "tenant_id": tenant, "app_secret": "s", "token": TOKEN}
    accounts = json.dumps({"official_accounts": [{**app, "aes_key": AES_KEY}]})
    acquisition_url = await database(request, backend, tmp_path, "acquisition")
    identity_url = await database(request, backend, tmp_path, "identity")
    common = {
        "database_url": acquisition_url,
        "nats_url": nats_server.url,
        "state_dir": tmp_path,
        "wechat_worker_poll_s": 0.1,
        "accounts": accounts,
    }

    # Identity unreachable: the callback still answers at once and keeps the message.
    nowhere = f"127.0.0.1:{free_port()}"
    async with running_service(DEFINITION, identity_url=nowhere, **common) as acquisition:  # type: ignore[arg-type]
        env = Env(None, acquisition, tenant, app_id, "")
        campaign = await env.campaign()
        channel = await env.qr_channel(campaign.campaign_id, "restart-1")
        query, body = safe_post(
            event_xml("o-patient", "subscribe", key="qrscene_restart-1"), app_id
        )
        async with httpx.AsyncClient(base_url=acquisition.http_url) as http:
            answer = await http.post(f"/v1/wechat/{app_id}/callback", params=query, content=body)
        assert answer.status_code == 200
        assert (await env.stats(channel.channel_id)).subscribes == 0

    async with (
        running_service(
            closedloop_identity.main.DEFINITION,
            database_url=identity_url,
            nats_url=nats_server.url,
            state_dir=tmp_path,
        ) as identity,
        running_service(DEFINITION, identity_url=identity.grpc_target, **common) as acquisition,  # type: ignore[arg-type]
    ):
        env = Env(identity, acquisition, tenant, app_id, "")

        async def processed() -> bool:
            stats = await env.stats(channel.channel_id)
            return (stats.scans, stats.subscribes, stats.unique_customers) == (1, 1, 1)

        await eventually(processed)
