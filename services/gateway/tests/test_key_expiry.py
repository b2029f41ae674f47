"""Idempotency keys last CLOSEDLOOP_IDEMPOTENCY_KEY_RETENTION_S (7 days), as CaptureLead's do: a
finished send then forgets its key (the send itself stays, readable by id) and the same key is a
new send; a transfer's request row goes. Younger keys still return the first answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from closedloop.gateway.v1 import gateway_pb2 as pb
from closedloop_gateway.models import Base, SendRow, TransferRequestRow
from gateway_helpers import APP, TENANT, unique
from loopkit_dev.testing import RunningService, eventually


def _text(key: str, openid: str) -> pb.SendMessageRequest:
    return pb.SendMessageRequest(
        tenant_id=TENANT,
        idempotency_key=key,
        customer_id="cust-expiry",
        official_account_template=pb.OfficialAccountTemplate(
            app_id=APP, openid=openid, template_id="tpl-expiry", data={"first": "hi"}
        ),
    )


async def _finished(stub: Any, send_id: str) -> pb.Send:
    found: list[pb.Send] = []

    async def check() -> bool:
        answer = await stub.GetSend(pb.GetSendRequest(tenant_id=TENANT, send_id=send_id))
        found.append(answer.send)
        return answer.send.status in (pb.SEND_STATUS_SENT, pb.SEND_STATUS_FAILED)

    await eventually(check, timeout_s=30)
    return found[-1]


async def test_old_keys_are_forgotten_and_young_ones_kept(
    gateway: RunningService, stub: Any
) -> None:
    runtime = gateway.runtime
    retention_s = runtime.settings.idempotency_key_retention_s
    assert retention_s == 7 * 86400  # the documented default, the same as CaptureLead's
    old_key, young_key = unique("k-old"), unique("k-young")
    young_request = _text(young_key, unique("o"))
    old = (await stub.SendMessage(_text(old_key, unique("o")))).send
    young = (await stub.SendMessage(young_request)).send
    await _finished(stub, old.send_id)
    await _finished(stub, young.send_id)
    transfer_key = unique("handover")
    transfer = await stub.TransferCustomers(
        pb.TransferCustomersRequest(
            tenant_id=TENANT,
            handover_userid=unique("rep"),
            takeover_userid=unique("rep"),
            external_userids=[unique("wm")],
            resigned=True,
            idempotency_key=transfer_key,
        )
    )
    assert transfer.customers

    # The old send and the transfer age past the retention (a week and an hour ago).
    long_ago = datetime.now(UTC) - timedelta(seconds=retention_s + 3600)
    sends = Base.metadata.tables[SendRow.__tablename__]
    transfers = Base.metadata.tables[TransferRequestRow.__tablename__]
    async with runtime.engine.begin() as conn:
        await conn.execute(
            update(sends).where(sends.c.id == old.send_id).values(created_at=long_ago)
        )
        await conn.execute(
            update(transfers)
            .where(transfers.c.idempotency_key == transfer_key)
            .values(created_at=long_ago)
        )

    # What the service's sweep does every CLOSEDLOOP_RETENTION_SWEEP_INTERVAL_S.
    swept = await runtime.prune_expired()
    assert swept["sends.idempotency_key"] >= 1 and swept["transfer_requests"] >= 1

    # The old send is still there by its id, without its key ...
    kept = (await stub.GetSend(pb.GetSendRequest(tenant_id=TENANT, send_id=old.send_id))).send
    assert kept.status == pb.SEND_STATUS_SENT and kept.idempotency_key == ""
    # ... and its key is a new send now; the young key still answers with its first send.
    again = await stub.SendMessage(_text(old_key, unique("o")))
    assert again.created and again.send.send_id != old.send_id
    repeat = await stub.SendMessage(young_request)
    assert not repeat.created and repeat.send.send_id == young.send_id
    async with runtime.engine.connect() as conn:
        left = (
            await conn.execute(
                transfers.select().where(transfers.c.idempotency_key == transfer_key)
            )
        ).all()
    assert left == []
