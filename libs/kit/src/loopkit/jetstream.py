"""JetStream's hot paths without nats-py's per-message overheads: a pull fetch and bulk acks.

nats-py's `PullSubscription.fetch(n)` takes each of the n messages with `Subscription.next_msg`,
which makes a uuid4, a task and (inside `asyncio.wait_for`) a second task and a timer per message,
even when the message has long been waiting in the subscription's queue: ~30 µs a message, more
than the rest of a consumer's per-message work in the kit. `fetch` here is the same protocol (the
same pull requests, the same handling of status messages and time-outs, in the same order: see
nats-py 2.16's `_fetch_n`, which it follows) but takes queued messages with `get_nowait`, and waits
(one `wait_for`) only while the queue is empty.

`ack_all` acks a batch with one write of all the `+ACK`s (nats-py: a publish per message, each
validating its subject and building its frame in Python).

`Publisher.publish_all` publishes a batch to JetStream as one write of HPUB frames (each with its
own reply subject under the publisher's inbox) and waits for the acks in bulk, from a subscription
of its own read like `fetch` reads: nats-py's `publish_async` makes a future, a callback, a NUID
token and a header block per message, and hands every ack to a callback through a task switch.

Both reach into nats-py's private attributes (`Subscription._pending_queue`, `_pending_size`;
`Client._send_command`, `_flush_pending`); nats-py is pinned in uv.lock, and the kit's consumer
tests run through both on every change.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping, Sequence

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.errors import ConnectionClosedError, MaxPayloadError, OutboundBufferLimitError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext, api
from nats.js.errors import APIError, FetchTimeoutError, NoStreamResponseError

_STATUS = api.Header.STATUS
_NO_MESSAGES = api.StatusCode.NO_MESSAGES
_REQUEST_TIMEOUT = api.StatusCode.REQUEST_TIMEOUT
_CONFLICT = api.StatusCode.CONFLICT
_HEARTBEAT = api.StatusCode.CONTROL_MESSAGE


def _status(msg: Msg) -> str | None:
    headers = msg.headers
    return None if headers is None else headers.get(_STATUS)


def _processable(status: str | None, msg: Msg) -> bool:
    """nats-py's `_is_processable_msg`: a message, or a temporary status to skip; raises on an
    error status."""
    if not status:
        return True
    if status in (_NO_MESSAGES, _CONFLICT, _REQUEST_TIMEOUT):
        return False
    raise APIError.from_msg(msg)


class _Pull:
    """One fetch: the messages delivered to the pull subscription's inbox, taken cheaply, and
    what came of it so far."""

    def __init__(self, psub: JetStreamContext.PullSubscription, batch: int, wait_s: float) -> None:
        if psub._sub is None:
            raise ValueError("nats: invalid subscription")
        self._psub = psub
        self._sub: NatsSubscription = psub._sub
        self._queue: asyncio.Queue[Msg] = self._sub._pending_queue
        self._start = time.monotonic()
        self._wait_s = wait_s
        self.msgs: list[Msg] = []
        self.needed = batch
        self.got_any_response = False  # a heartbeat came: not an i/o time-out

    def left(self) -> float:
        return self._wait_s - (time.monotonic() - self._start)

    def _took(self, msg: Msg) -> Msg:
        self._sub._pending_size -= len(msg.data)
        self._queue.task_done()  # as next_msg does (a drain joins the queue)
        return msg

    def drain(self) -> None:
        """What earlier requests left queued (their status messages are stale: dropped)."""
        while not self._queue.empty():
            msg = self._took(self._queue.get_nowait())
            if not _status(msg):
                self.take(msg)

    def take(self, msg: Msg) -> None:
        self.needed -= 1
        self.msgs.append(msg)

    async def next(self) -> Msg:
        """The next message, waiting at most the time left (nats.errors.TimeoutError)."""
        if not self._queue.empty():
            return self._took(self._queue.get_nowait())
        if self._sub._conn.is_closed:
            raise ConnectionClosedError
        try:
            msg = await asyncio.wait_for(self._queue.get(), max(self.left(), 0.0))
        except TimeoutError:
            if self._sub._conn.is_closed:
                raise ConnectionClosedError from None
            raise NatsTimeoutError from None
        return self._took(msg)

    async def request(self, **request: object) -> None:
        nc: Client = self._psub._nc
        body = json.dumps({"batch": self.needed, **request}).encode()
        await nc.publish(self._psub._nms, body, self._psub._deliver)
        await asyncio.sleep(0)

    async def rest(self) -> None:
        """The rest of a request's messages, until its end (404/408), enough, or the time-out."""
        try:
            for _ in range(self.needed):
                if self.left() < 0:
                    return
                msg = await self.next()
                status = _status(msg)
                if status in (_NO_MESSAGES, _REQUEST_TIMEOUT):
                    return
                if status == _HEARTBEAT:
                    self.got_any_response = True
                    continue
                if _processable(status, msg):
                    self.take(msg)
        except NatsTimeoutError:
            pass  # at least one came

    async def no_wait(self, expires: int) -> None:
        """The first request: the server sends what it has, then a 404/408. (No `expires` when
        something was queued already: the server would treat it as a lingering pull.)"""
        await self.request(**({} if self.msgs else {"expires": expires}), no_wait=True)
        try:
            msg = await self.next()
        except NatsTimeoutError:
            if self.msgs:
                return
            raise
        status = _status(msg)
        if status == _HEARTBEAT:
            self.got_any_response = True
        elif _processable(status, msg):
            self.take(msg)
            await self.rest()

    async def lingering(self) -> None:
        """The second request: waits until something arrives, for the time left."""
        remaining = self.left()
        expires = int(remaining * 1_000_000_000) - 100_000
        if remaining <= 0 or expires <= 0:
            raise NatsTimeoutError
        await self.request(expires=expires)
        while self.needed:
            try:
                msg = await self.next()
            except NatsTimeoutError:
                if self.msgs:
                    break
                if self.got_any_response:
                    raise FetchTimeoutError from None
                raise
            status = _status(msg)
            if status == _HEARTBEAT:
                self.got_any_response = True
                continue
            if not status:
                self.take(msg)
            # A message, or a status (a concurrent fetch's, or the end): collect the rest.
            await self.rest()
            break
        if not self.msgs and self.got_any_response:
            raise FetchTimeoutError


async def fetch(psub: JetStreamContext.PullSubscription, batch: int, wait_s: float) -> list[Msg]:
    """`psub.fetch(batch, timeout=wait_s)` (batch > 1), the messages taken as described above.
    Raises nats.errors.TimeoutError when nothing came in `wait_s`."""
    if batch < 2 or wait_s <= 0:
        raise ValueError("fetch: batch > 1 and wait_s > 0")
    pull = _Pull(psub, batch, wait_s)
    pull.drain()
    if pull.needed <= 0:
        return pull.msgs
    await pull.no_wait(int(wait_s * 1_000_000_000) - 100_000)
    if not pull.msgs:
        await pull.lingering()
    return pull.msgs


async def ack_all(nc: Client, msgs: list[Msg]) -> None:
    """`msg.ack()` for each of `msgs` (JetStream messages, none acked yet), as one write."""
    if not msgs:
        return
    if not nc.is_connected:  # nats-py's own path decides: buffer while reconnecting, or raise
        for msg in msgs:
            await msg.ack()
        return
    for msg in msgs:
        if not msg.reply or msg._ackd:  # what Msg._check_reply refuses
            raise ValueError("ack_all: a message without a reply subject, or acked already")
    frames = b"".join([b"PUB " + msg.reply.encode() + b" 0\r\n\r\n" for msg in msgs])
    nc.stats["out_msgs"] += len(msgs)
    await nc._send_command(frames)
    if nc._flush_queue is not None and nc._flush_queue.empty():
        await nc._flush_pending()
    for msg in msgs:
        msg._ackd = True


_HEADER_KEY = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NEWLINES = str.maketrans({"\r": " ", "\n": " "})
_NO_RESPONDERS = "503"


def _header_block(headers: Mapping[str, str]) -> bytes:
    """NATS headers as nats-py writes them (keys checked, values trimmed, CR/LF made spaces)."""
    lines = ["NATS/1.0"]
    for name, value in headers.items():
        key = name.strip()
        if not key:
            continue
        if not _HEADER_KEY.fullmatch(key):
            raise ValueError(f"bad NATS header name {key!r}")
        lines.append(f"{key}: {str(value).strip().translate(_NEWLINES)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Publisher:
    """Batches to JetStream, each one write, their acks awaited together (see the module)."""

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._sub: NatsSubscription | None = None
        self._prefix = ""
        self._passes = 0
        self.awaiting = 0  # acks the batch being published still waits for
        # One batch at a time: the acks of all share one queue, and a batch's reader drops
        # what is not its own (an earlier batch's that gave up waiting).
        self._one_at_a_time = asyncio.Lock()

    async def _subscribed(self) -> NatsSubscription:
        if self._sub is None:
            nc = self._nc
            self._prefix = f"{nc._inbox_prefix.decode()}.{nc._nuid.next().decode()}"
            self._sub = await nc.subscribe(f"{self._prefix}.>")  # no callback: a queue
        return self._sub

    async def publish_all(
        self, messages: Sequence[tuple[str, bytes, Mapping[str, str]]], timeout_s: float
    ) -> int:
        """Publish (subject, data, headers) in order and wait up to `timeout_s` for every ack;
        returns how many JetStream had already (a duplicate `Nats-Msg-Id`). While NATS is away
        the batch waits in nats-py's reconnect buffer, as a publish does (OutboundBufferLimitError
        when it is full). Raises when one is refused (nats.js.errors.APIError,
        NoStreamResponseError) or on the time-out (TimeoutError): the caller publishes the batch
        again later, and JetStream drops what it already has."""
        if not messages:
            return 0
        async with self._one_at_a_time:
            return await self._publish_all(messages, timeout_s)

    async def _publish_all(
        self, messages: Sequence[tuple[str, bytes, Mapping[str, str]]], timeout_s: float
    ) -> int:
        nc = self._nc
        if nc.is_closed:
            raise ConnectionClosedError
        sub = await self._subscribed()
        self._passes += 1
        tag = f"{self._prefix}.{self._passes}."
        frames = []
        for n, (subject, data, headers) in enumerate(messages):
            if len(data) > nc._max_payload:
                raise MaxPayloadError
            if not subject or " " in subject or "\r" in subject or "\n" in subject:
                raise ValueError(f"bad NATS subject {subject!r}")
            hdr = _header_block(headers)
            frames.append(
                f"HPUB {subject} {tag}{n} {len(hdr)} {len(hdr) + len(data)}\r\n".encode()
                + hdr
                + data
                + b"\r\n"
            )
        written = b"".join(frames)
        if not nc.is_connected and (
            nc._max_pending_size <= 0 or len(written) + nc._pending_data_size > nc._max_pending_size
        ):
            raise OutboundBufferLimitError
        nc.stats["out_msgs"] += len(messages)
        nc.stats["out_bytes"] += sum(len(data) for _, data, _ in messages)
        self.awaiting = len(messages)
        try:
            await nc._send_command(written)
            if nc._flush_queue is not None and nc._flush_queue.empty():
                await nc._flush_pending()
            return await self._acks(sub, tag, len(messages), timeout_s)
        finally:
            self.awaiting = 0

    async def _acks(self, sub: NatsSubscription, tag: str, n: int, timeout_s: float) -> int:
        queue: asyncio.Queue[Msg] = sub._pending_queue
        deadline = time.monotonic() + timeout_s
        acked: set[str] = set()
        duplicates = 0
        while len(acked) < n:
            if queue.empty():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{n - len(acked)} of {n} JetStream acks did not come")
                try:
                    msg = await asyncio.wait_for(queue.get(), left)
                except TimeoutError:
                    raise TimeoutError(
                        f"{n - len(acked)} of {n} JetStream acks did not come"
                    ) from None
            else:
                msg = queue.get_nowait()
            sub._pending_size -= len(msg.data)
            queue.task_done()
            if not msg.subject.startswith(tag):
                continue  # an ack of an earlier batch that gave up waiting
            if msg.headers and msg.headers.get(_STATUS) == _NO_RESPONDERS:
                raise NoStreamResponseError
            reply = json.loads(msg.data)
            if "error" in reply:
                raise APIError.from_error(reply["error"])
            acked.add(msg.subject)
            self.awaiting = n - len(acked)
            duplicates += bool(reply.get("duplicate"))
        return duplicates

    async def close(self) -> None:
        if self._sub is not None and not self._nc.is_closed:
            sub, self._sub = self._sub, None
            await sub.unsubscribe()
