"""List and replay dead-lettered events (the `closedloop deadletters` command)."""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from loopkit.natsio import DEAD_LETTER_STREAM


@dataclass(frozen=True)
class DeadLetter:
    seq: int
    consumer: str
    original_subject: str
    error: str
    delivered: str
    event_id: str
    data: bytes
    headers: dict[str, str]


async def list_dead_letters(
    js: JetStreamContext, *, consumer: str | None = None, limit: int = 1000
) -> list[DeadLetter]:
    try:
        info = await js.stream_info(DEAD_LETTER_STREAM)
    except NotFoundError:
        return []
    found: list[DeadLetter] = []
    seq = info.state.first_seq
    while seq and seq <= info.state.last_seq and len(found) < limit:
        try:
            raw = await js.get_msg(DEAD_LETTER_STREAM, seq)
        except NotFoundError:
            seq += 1
            continue  # deleted after a replay
        headers = dict(raw.headers or {})
        letter = DeadLetter(
            seq=seq,
            consumer=headers.get("Closedloop-Consumer", ""),
            original_subject=headers.get("Closedloop-Original-Subject", ""),
            error=headers.get("Closedloop-Error", ""),
            delivered=headers.get("Closedloop-Delivered", ""),
            # Older letters carried the event id (or stream sequence) last in their Nats-Msg-Id.
            event_id=headers.get("Closedloop-Event-Id")
            or headers.get("Nats-Msg-Id", "").rsplit(":", 1)[-1],
            data=raw.data or b"",
            headers=headers,
        )
        if consumer is None or letter.consumer == consumer:
            found.append(letter)
        seq += 1
    return found


async def replay(js: JetStreamContext, letter: DeadLetter) -> None:
    """Put the event back on its original subject and drop the dead letter.

    Every consumer of that subject sees it again; the ones that already applied it skip it by
    their inbox, the one that failed gets another go.
    """
    headers = {k: v for k, v in letter.headers.items() if not k.startswith("Closedloop-")}
    headers["Closedloop-Type"] = letter.headers.get("Closedloop-Type", "")
    headers["Nats-Msg-Id"] = f"replay:{letter.seq}:{letter.event_id}"
    await js.publish(letter.original_subject, letter.data, headers=headers)
    await js.delete_msg(DEAD_LETTER_STREAM, letter.seq)
