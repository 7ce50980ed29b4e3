"""JetStream's wire protocol framed by hand where nats-py's helpers cost too much per message:
a pull fetcher, a windowed publisher and batched acks. Used by bus/nats.py only."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
from collections import deque
from collections.abc import Sequence
from contextlib import suppress

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from weatherpipe.errors import BusError, BusNotSetUp, BusUnavailable

REQUEST_TIMEOUT_SECONDS = 5.0


class PullFetcher:
    """Fetch from a JetStream pull consumer: pull requests of batch + expires, replies buffered.

    nats-py's own fetch awaits every message with a timeout of its own (a task each), which
    costs more than half the drain throughput; here one subscription callback buffers what
    arrives and a pull waits once for its request to be answered. Messages arriving after a
    pull gave up stay in the buffer for the next one (and close() hands them back).
    """

    def __init__(self, nc: Client, stream: str, consumer: str) -> None:
        self._nc = nc
        self._request_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._inbox = nc.new_inbox()
        self._requests = itertools.count()
        self._received = 0
        self._wake_at = math.inf  # wake the waiting pull once _received reaches this
        self._current = ""  # the request a pull waits on; statuses of older ones are ignored
        self._status = ""
        self._answered = asyncio.Event()
        self.buffer: deque[Msg] = deque()

    async def start(self) -> None:
        await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_reply)

    async def _on_reply(self, msg: Msg) -> None:
        status = JetStreamContext.is_status_msg(msg)
        if status is None:
            # Data carries its own subject, not the request's: count it, whoever asked.
            self.buffer.append(msg)
            self._received += 1
            if self._received >= self._wake_at:
                self._answered.set()
        elif status != "100" and msg.subject == self._current:  # 100 is a heartbeat
            description = (msg.headers or {}).get("Description", "")
            self._status = f"{status} {description}"
            self._answered.set()

    async def _ask(self, batch: int, expires: float | None, deadline: float) -> None:
        """Send one pull request and wait until it is answered in full, or the deadline."""
        self._current = f"{self._inbox}.{next(self._requests)}"
        self._status = ""
        self._wake_at = self._received + batch
        self._answered.clear()
        body: dict[str, object] = {"batch": batch}
        if expires is None:
            body["no_wait"] = True  # what is there now, then a 404 status if that is less
        else:
            body["expires"] = int(expires * 1e9)  # nanoseconds; a 408 status when it ends
        await self._nc.publish(self._request_subject, json.dumps(body).encode(), self._current)
        with suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                await self._answered.wait()
        self._wake_at = math.inf
        if self._status.startswith("409") and "Consumer Deleted" in self._status:
            raise BusNotSetUp("the JetStream consumer was deleted: run `weatherpipe bus setup`")
        if self._status.startswith("503"):
            raise BusUnavailable("JetStream did not answer the pull request")

    def _take(self, max_messages: int) -> list[Msg]:
        count = min(max_messages, len(self.buffer))
        return [self.buffer.popleft() for _ in range(count)]

    async def fetch(self, max_messages: int, timeout: float) -> list[Msg]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if not self.buffer:
            # What is waiting now, in one burst.
            await self._ask(max_messages, None, deadline)
        if not self.buffer and deadline - loop.time() > 0.01:
            # Nothing was: wait for one message, then take the burst that came with it.
            await self._ask(1, deadline - loop.time(), deadline)
            if self.buffer and max_messages > 1:
                await self._ask(max_messages - 1, None, deadline)
        return self._take(max_messages)


class RawPublisher:
    """JetStream publishes framed by hand, one write per window, answers counted on one inbox.

    js.publish_async() makes a future, an inbox entry and a validated frame per message: about
    10,000 messages/s here, too slow for 10,000 devices a second from one process. The stream
    answers each message with a JSON ack (or an error) on its reply subject; a window is done
    when every one of its messages was answered.
    """

    def __init__(self, nc: Client) -> None:
        self.nc = nc
        self._inbox = nc.new_inbox()
        self._windows = itertools.count()
        self._prefix = ""
        self._expected = 0
        self._answered = 0
        self._errors: list[str] = []
        self._done = asyncio.Event()

    async def start(self) -> None:
        await self.nc.subscribe(f"{self._inbox}.>", cb=self._on_answer)

    async def _on_answer(self, msg: Msg) -> None:
        if not msg.subject.startswith(self._prefix):
            return  # an answer to a window that already gave up
        status = (msg.headers or {}).get("Status")
        if status or b'"error"' in msg.data:
            self._errors.append(status or msg.data[:200].decode(errors="replace"))
        self._answered += 1
        if self._answered >= self._expected:
            self._done.set()

    async def publish(self, subject: str, payloads: Sequence[bytes]) -> None:
        """Publish and wait until the stream has stored every payload (BusError if not)."""
        self._prefix = f"{self._inbox}.{next(self._windows)}."
        self._expected, self._answered, self._errors = len(payloads), 0, []
        self._done.clear()
        head = f"PUB {subject} {self._prefix}".encode()
        await self.nc._send_command(
            b"".join(
                head + b"%d %d\r\n" % (i, len(p)) + p + b"\r\n" for i, p in enumerate(payloads)
            )
        )
        await self.nc.flush(timeout=int(REQUEST_TIMEOUT_SECONDS))
        await asyncio.wait_for(self._done.wait(), REQUEST_TIMEOUT_SECONDS)
        if self._errors:
            if any(e.startswith("503") for e in self._errors):
                raise BusNotSetUp(
                    "no JetStream stream captures the topic: run `weatherpipe bus setup`"
                )
            raise BusError(
                f"JetStream refused {len(self._errors)} of {len(payloads)}: {self._errors[0]}"
            )


async def publish_empty_many(nc: Client, subjects: Sequence[str], payload: bytes) -> None:
    """Publish `payload` to each subject (acks and naks are such messages) in one write.

    nats-py's publish() validates and frames each message on its own (about 9 µs an ack, a
    quarter of ingest's time per reading at 25,000/s); one joined frame costs well under 1 µs
    a message. Falls back to publish() if the client's internals change.
    """
    send = getattr(nc, "_send_command", None)
    if send is None:
        for subject in subjects:
            await nc.publish(subject, payload)
        return
    if subjects:
        size = b" %d\r\n" % len(payload)
        await send(b"".join(b"PUB " + s.encode() + size + payload + b"\r\n" for s in subjects))
