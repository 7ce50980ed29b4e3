"""The NATS JetStream bus (nats://host:port): a file stream per topic, a durable pull consumer."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit, urlunsplit

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    Header,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from weatherpipe.bus.base import Bus, Message
from weatherpipe.errors import BusError, BusNotSetUp, BusUnavailable

log = logging.getLogger(__name__)

# A week of backlog or 10 GiB, whichever comes first; past it new publishes are refused
# (DiscardPolicy.NEW) so a publisher spools instead of the stream silently dropping old readings.
STREAM_MAX_AGE_SECONDS = 7 * 24 * 3600.0
STREAM_MAX_BYTES = 10 * 1024**3
MAX_PAYLOAD_BYTES = 1024 * 1024
ACK_WAIT_SECONDS = 60.0
MAX_ACK_PENDING = 20_000
CONNECT_TIMEOUT_SECONDS = 5.0
REQUEST_TIMEOUT_SECONDS = 5.0
RECONNECT_WAIT_SECONDS = 1.0
PUBLISH_WINDOW = 4_000
# A pull request stays open this long on the server, delivering messages as they arrive.
PULL_EXPIRES_SECONDS = 5.0
# JetStream stream and consumer names may not hold these.
_NAME_FORBIDDEN = re.compile(r"[.*>\s/\\]")

Item = tuple[bytes, Mapping[str, str] | None]
_UNREACHABLE = (
    TimeoutError,
    OSError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.NoServersError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
    nats.errors.NoRespondersError,
)


def stream_name(topic: str) -> str:
    """The stream that captures subject `topic`: WEATHER_TOPIC for weather_topic."""
    return _NAME_FORBIDDEN.sub("_", topic).upper()


def consumer_name(subscription: str) -> str:
    return _NAME_FORBIDDEN.sub("_", subscription)


@contextmanager
def _translated() -> Iterator[None]:
    """Turn nats-py's exceptions into weatherpipe's at this edge."""
    try:
        yield
    except nats.js.errors.NoStreamResponseError as exc:
        raise BusNotSetUp(
            "no JetStream stream captures the topic: run `weatherpipe bus setup`"
        ) from exc
    except nats.js.errors.NotFoundError as exc:
        raise BusNotSetUp(f"JetStream: {exc.description}: run `weatherpipe bus setup`") from exc
    except nats.js.errors.ServiceUnavailableError as exc:
        raise BusUnavailable(f"JetStream unavailable: {exc.description}") from exc
    except _UNREACHABLE as exc:
        raise BusUnavailable(f"NATS unreachable: {exc!r}") from exc
    except nats.errors.Error as exc:
        raise BusError(f"NATS: {exc!r}") from exc


def _headers(attributes: Mapping[str, str] | None) -> dict[str, str] | None:
    return dict(attributes) if attributes else None


def _attributes(msg: Msg) -> dict[str, str]:
    # Nats-* headers are the server's and the client's bookkeeping, not the publisher's.
    return {k: v for k, v in (msg.headers or {}).items() if not k.startswith("Nats-")}


class NatsBus(Bus):
    """JetStream: stream STREAM(topic) on subject `topic`, durable pull consumer `subscription`.

    URL options: `?ack_wait=SECONDS&max_ack_pending=N` (used by `setup`).
    """

    scheme = "nats"

    def __init__(self, url: str, topic: str, subscription: str) -> None:
        super().__init__(url, topic, subscription)
        parts = urlsplit(url)
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.server = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        self.stream = stream_name(topic)
        self.consumer = consumer_name(subscription)
        self.ack_wait = float(options.get("ack_wait", ACK_WAIT_SECONDS))
        self.max_ack_pending = int(options.get("max_ack_pending", MAX_ACK_PENDING))
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._sub: Subscription | None = None
        self._unsettled: dict[str, Msg] = {}
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self.consumer}"
        self._inbox_subject = ""
        self._ready: deque[Msg] = deque()
        self._arrived = asyncio.Event()
        self._request_left = 0
        self._request_until = 0.0
        self._failure: str | None = None

    async def connect(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            return
        with _translated():
            # The first connect gives up quickly so a wrong URL is reported, not retried forever.
            nc = await nats.connect(
                self.server,
                connect_timeout=int(CONNECT_TIMEOUT_SECONDS),
                allow_reconnect=True,
                max_reconnect_attempts=1,
                reconnect_time_wait=int(RECONNECT_WAIT_SECONDS),
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
            )
        # Once connected, nats-py re-establishes a lost connection by itself, forever, with
        # jittered waits; operations meanwhile raise BusUnavailable and the caller backs off.
        nc.options["max_reconnect_attempts"] = -1
        self._nc = nc
        self._js = self._nc.jetstream(timeout=REQUEST_TIMEOUT_SECONDS)

    async def close(self) -> None:
        nc, sub = self._nc, self._sub
        self._nc, self._js, self._sub = None, None, None
        self._request_until = 0.0
        if nc is None or nc.is_closed:
            return
        try:
            if sub is not None:
                # First drop the inbox, so the server ends our open pull request rather than
                # handing the messages we give back below straight to it.
                await sub.unsubscribe()
                await nc.flush(timeout=int(REQUEST_TIMEOUT_SECONDS))
            # Hand back what we hold so it is redelivered now, not after ack_wait.
            held = [*self._unsettled, *(msg.reply for msg in self._ready)]
            await _publish_empty_many(nc, held, b"-NAK")
            self._unsettled.clear()
            self._ready.clear()
            await nc.flush(timeout=int(REQUEST_TIMEOUT_SECONDS))
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            log.warning("closing NATS connection: %r", exc)
        finally:
            await nc.close()

    async def setup(self) -> None:
        await self.connect()
        with _translated():
            await self._ensure_stream()
            await self._ensure_consumer()

    async def _ensure_stream(self) -> None:
        config = StreamConfig(
            name=self.stream,
            subjects=[self.topic],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.NEW,
            max_age=STREAM_MAX_AGE_SECONDS,
            max_bytes=STREAM_MAX_BYTES,
            max_msg_size=MAX_PAYLOAD_BYTES,
        )
        try:
            await self._jetstream().add_stream(config)
        except nats.js.errors.BadRequestError:
            # It exists with other settings (an older version, or an operator's edit): keep
            # the operator's limits but make sure it still captures our subject.
            info = await self._jetstream().stream_info(self.stream)
            if self.topic not in (info.config.subjects or []):
                raise
            log.info("stream %s exists with other settings; leaving them", self.stream)

    async def _ensure_consumer(self) -> None:
        config = ConsumerConfig(
            durable_name=self.consumer,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_ack_pending=self.max_ack_pending,
            deliver_policy=DeliverPolicy.ALL,
            max_deliver=-1,
            filter_subject=self.topic,
        )
        try:
            await self._jetstream().add_consumer(self.stream, config)
        except nats.js.errors.BadRequestError:
            await self._jetstream().consumer_info(self.stream, self.consumer)
            log.info("consumer %s exists with other settings; leaving them", self.consumer)

    def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            raise BusUnavailable("NATS bus is not connected: call connect() first")
        return self._js

    def _client(self) -> Client:
        if self._nc is None:
            raise BusUnavailable("NATS bus is not connected: call connect() first")
        return self._nc

    async def publish(self, data: bytes, attributes: Mapping[str, str] | None = None) -> None:
        with _translated():
            await self._jetstream().publish(self.topic, data, headers=_headers(attributes))

    async def publish_many(self, items: Sequence[Item]) -> None:
        # Windows no wider than publish_async's own cap (4,000 unanswered), so no call blocks on
        # its semaphore without a deadline when the server stops answering.
        for first in range(0, len(items), PUBLISH_WINDOW):
            await self._publish_window(items[first : first + PUBLISH_WINDOW])

    async def _publish_window(self, items: Sequence[Item]) -> None:
        js = self._jetstream()
        with _translated():
            # No wait_stall: with one, every call wraps a task around the semaphore (6x slower).
            futures = [
                await js.publish_async(self.topic, data, headers=_headers(attrs))
                for data, attrs in items
            ]
            acks = await asyncio.wait_for(
                asyncio.gather(*futures, return_exceptions=True), REQUEST_TIMEOUT_SECONDS
            )
        for ack in acks:
            if isinstance(ack, BaseException):
                with _translated():
                    raise ack

    async def _inbox(self) -> Subscription:
        """Our own inbox that pull requests are answered on (made on the first pull)."""
        if self._sub is None:
            js, nc = self._jetstream(), self._client()
            with _translated():
                await js.consumer_info(self.stream, self.consumer)
                self._inbox_subject = nc.new_inbox()
                self._sub = await nc.subscribe(self._inbox_subject, cb=self._delivered)
        return self._sub

    async def _delivered(self, msg: Msg) -> None:
        """A message, or a status that ends a pull request (404 none, 408 expired, 409 ...)."""
        headers = msg.headers or {}
        status = headers.get(Header.STATUS)
        if status is None:
            self._ready.append(msg)
            self._request_left -= 1
            if self._request_left <= 0:
                self._request_until = 0.0
        elif status != "100":  # 100 is an idle heartbeat
            self._request_until = 0.0
            description = headers.get(Header.DESCRIPTION, "")
            # 409 "Exceeded MaxWaiting" and the like only end a request; 503 means no
            # JetStream, other 409s a consumer that is gone.
            if status == "503" or (status == "409" and "Exceeded" not in description):
                self._failure = f"{status} {description}".strip()
        self._arrived.set()

    async def _request(self, batch: int) -> None:
        """Ask the consumer for up to `batch` messages, delivered to our inbox as they come."""
        body = b'{"batch":%d,"expires":%d}' % (batch, int(PULL_EXPIRES_SECONDS * 1e9))
        with _translated():
            await self._client().publish(self._next_subject, body, reply=self._inbox_subject)
        self._request_left = batch
        self._request_until = time.monotonic() + PULL_EXPIRES_SECONDS

    def _request_open(self) -> bool:
        return time.monotonic() < self._request_until

    async def pull(self, max_messages: int, timeout: float) -> list[Message]:
        """Hand out what the open pull request delivered; keep one request open ahead, so the
        next batch streams in while the caller stores this one (fetch() awaits every message
        with its own timeout: about 10,000 messages/s; this path several times that)."""
        await self._inbox()
        deadline = time.monotonic() + timeout
        while not self._ready:
            self._raise_failure()
            if not self._client().is_connected:
                raise BusUnavailable("NATS connection is down")
            if not self._request_open():
                await self._request(max_messages)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return []
        taken = self._take(max_messages)
        if not self._ready and not self._request_open():
            await self._request(max_messages)  # prefetch the next batch
        return taken

    def _take(self, max_messages: int) -> list[Message]:
        taken: list[Message] = []
        ready = self._ready
        while ready and len(taken) < max_messages:
            msg = ready.popleft()
            self._unsettled[msg.reply] = msg
            taken.append(Message(msg.data, _attributes(msg), msg))
        return taken

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is None:
            return
        if failure.startswith("503"):
            raise BusUnavailable(f"JetStream unavailable: {failure}")
        raise BusNotSetUp(f"JetStream: {failure}: run `weatherpipe bus setup`")

    async def ack(self, messages: Sequence[Message]) -> None:
        await self._settle(messages, b"")

    async def nack(self, messages: Sequence[Message]) -> None:
        await self._settle(messages, b"-NAK")

    async def _settle(self, messages: Sequence[Message], verb: bytes) -> None:
        """All acks (or naks) as one write, then one flush round trip for the lot."""
        nc = self._client()
        replies = [message.handle.reply for message in messages]
        with _translated():
            await _publish_empty_many(nc, replies, verb)
            await nc.flush(timeout=int(REQUEST_TIMEOUT_SECONDS))
        for reply in replies:
            self._unsettled.pop(reply, None)

    async def ping(self) -> None:
        with _translated():
            await self._client().flush(timeout=int(REQUEST_TIMEOUT_SECONDS))

    async def lag(self) -> int | None:
        with _translated():
            info = await self._jetstream().consumer_info(self.stream, self.consumer)
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def delete(self) -> None:
        """Delete the stream and its consumers (tests and benchmarks clean up with this)."""
        with _translated():
            await self._jetstream().delete_stream(self.stream)

    async def _on_error(self, exc: Exception) -> None:
        log.warning("NATS: %r", exc)

    async def _on_disconnected(self) -> None:
        self._request_until = 0.0  # a request sent before the break is not answered after it
        log.info("NATS disconnected from %s", self.server)

    async def _on_reconnected(self) -> None:
        log.info("NATS reconnected to %s", self.server)


async def _publish_empty_many(nc: Client, subjects: Sequence[str], payload: bytes) -> None:
    """Publish `payload` to each subject (acks and naks are such messages) in one write.

    nats-py's publish() validates and frames each message on its own, about 9 µs an ack; one
    joined frame costs well under 1 µs a message. Falls back to publish() if the client's
    internals change.
    """
    send = getattr(nc, "_send_command", None)
    if send is None:
        for subject in subjects:
            await nc.publish(subject, payload)
        return
    size = b" %d\r\n" % len(payload)
    frame = b"\r\n".join(b"PUB " + s.encode() + size + payload for s in subjects)
    if frame:
        await send(frame + b"\r\n")
