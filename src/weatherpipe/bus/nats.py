"""The NATS JetStream bus (nats://host:port): a file stream per topic, a durable pull consumer."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from types import MappingProxyType
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from weatherpipe.bus.base import Bus, Message
from weatherpipe.bus.jetstream import (
    REQUEST_TIMEOUT_SECONDS,
    PullFetcher,
    RawPublisher,
    publish_empty_many,
)
from weatherpipe.errors import BusError, BusNotSetUp, BusUnavailable

log = logging.getLogger(__name__)

# A week of backlog. No byte limit by default: JetStream reserves a stream's max_bytes on disk
# up front, so a generous one exhausts a laptop's store after a few streams (`?max_bytes=`).
# Past a limit new publishes are refused (DiscardPolicy.NEW): the publisher spools rather than
# the stream silently dropping old, unstored readings.
STREAM_MAX_AGE_SECONDS = 7 * 24 * 3600.0
STREAM_MAX_BYTES = -1
MAX_PAYLOAD_BYTES = 1024 * 1024
ACK_WAIT_SECONDS = 60.0
MAX_ACK_PENDING = 100_000
CONNECT_TIMEOUT_SECONDS = 5.0
RECONNECT_WAIT_SECONDS = 1.0
PUBLISH_WINDOW = 4_000
# JetStream stream and consumer names may not hold these.
_NAME_FORBIDDEN = re.compile(r"[.*>\s/\\]")

Item = tuple[bytes, Mapping[str, str] | None]
_NO_ATTRIBUTES: Mapping[str, str] = MappingProxyType({})
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


def _attributes(msg: Msg) -> Mapping[str, str]:
    if not msg.headers:
        return _NO_ATTRIBUTES  # the common case, and one dict fewer per message
    # Nats-* headers are the server's and the client's bookkeeping, not the publisher's.
    return {k: v for k, v in msg.headers.items() if not k.startswith("Nats-")}


def message_id(reply: str) -> str | None:
    """A JetStream message's identity from its ack subject: the stream, its sequence in the
    stream and the time the stream stored it (so a deleted and re-created stream, whose
    sequence starts again at 1, gives new ids). Delivery count and consumer sequence are left
    out: they change on redelivery. None for a subject of another shape.

    `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`,
    or with `<domain>.<account hash>.` before the stream and a random token after.
    """
    tokens = reply.split(".")
    if len(tokens) == 9:
        return f"nats:{tokens[2]}:{tokens[5]}:{tokens[7]}"
    if len(tokens) in (11, 12):
        return f"nats:{tokens[2]}.{tokens[3]}.{tokens[4]}:{tokens[7]}:{tokens[9]}"
    return None


class NatsBus(Bus):
    """JetStream: stream STREAM(topic) on subject `topic`, durable pull consumer `subscription`.

    URL options (used by `setup`): `?ack_wait=SECONDS&max_ack_pending=N&max_bytes=N`.
    """

    scheme = "nats"

    def __init__(self, url: str, topic: str, subscription: str) -> None:
        super().__init__(url, topic, subscription)
        parts = urlsplit(url)
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        # Credentials go to the client on their own, never inside the server URL it logs.
        host = parts.netloc.rpartition("@")[2]
        self.server = urlunsplit((parts.scheme, host, "", "", ""))
        self._credentials = _credentials(parts.username, parts.password)
        self._connecting_error: Exception | None = None
        self.stream = stream_name(topic)
        self.consumer = consumer_name(subscription)
        self.ack_wait = float(options.get("ack_wait", ACK_WAIT_SECONDS))
        self.max_ack_pending = int(options.get("max_ack_pending", MAX_ACK_PENDING))
        self.max_bytes = int(options.get("max_bytes", STREAM_MAX_BYTES))
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._fetcher: PullFetcher | None = None
        self._unsettled: dict[str, Msg] = {}
        self._raw: RawPublisher | None = None

    async def connect(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            return
        self._connecting_error = None
        try:
            with _translated():
                # The first connect gives up quickly: a wrong URL is reported, not retried forever.
                nc = await nats.connect(
                    self.server,
                    connect_timeout=int(CONNECT_TIMEOUT_SECONDS),
                    allow_reconnect=True,
                    max_reconnect_attempts=1,
                    reconnect_time_wait=int(RECONNECT_WAIT_SECONDS),
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    **self._credentials,
                )
        except BusUnavailable as exc:
            reason = self._connecting_error or exc.__cause__ or exc
            raise BusUnavailable(f"NATS at {self.server} unreachable: {reason}") from exc
        # Once connected, nats-py re-establishes a lost connection by itself, forever, with
        # jittered waits; operations meanwhile raise BusUnavailable and the caller backs off.
        nc.options["max_reconnect_attempts"] = -1
        self._nc = nc
        self._js = self._nc.jetstream(timeout=REQUEST_TIMEOUT_SECONDS)

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        fetcher, self._fetcher = self._fetcher, None
        if nc is None or nc.is_closed:
            return
        try:
            # Hand back what we hold so it is redelivered now, not after ack_wait.
            held = list(self._unsettled.values()) + list(fetcher.buffer if fetcher else [])
            await publish_empty_many(nc, [msg.reply for msg in held], b"-NAK")
            self._unsettled.clear()
            await nc.flush(timeout=int(REQUEST_TIMEOUT_SECONDS))
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            log.warning("closing NATS connection: %r", exc)
        finally:
            # A connection the broker already dropped fails its last drain; it is closed anyway.
            with suppress(OSError):
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
            max_bytes=self.max_bytes,
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
            # On an existing consumer the server applies changes to its editable settings
            # (ack wait, max ack pending) in place. If anything else differs it refuses the
            # whole update, and the consumer keeps every setting it had.
            await self._jetstream().add_consumer(self.stream, config)
        except (nats.js.errors.BadRequestError, nats.js.errors.ServerError) as exc:
            # nats-server 2.9 answers a refused update with a 500 ("deliver policy can not be
            # updated"); a consumer that is really missing makes consumer_info raise.
            await self._jetstream().consumer_info(self.stream, self.consumer)
            log.warning(
                "consumer %s exists with other settings; leaving all of them: %s",
                self.consumer,
                exc.description,
            )

    def _jetstream(self) -> JetStreamContext:
        if self._js is None:
            raise BusUnavailable("NATS bus is not connected: call connect() first")
        return self._js

    def _client(self) -> Client:
        if self._nc is None:
            raise BusUnavailable("NATS bus is not connected: call connect() first")
        return self._nc

    def _publisher(self) -> JetStreamContext:
        # While nats-py reconnects it would buffer a publish and let its ack time out; failing at
        # once lets the publisher spool without stalling, and without a buffered copy going out
        # later besides the spooled one.
        if not self._client().is_connected:
            raise BusUnavailable(f"NATS connection to {self.server} is down; reconnecting")
        return self._jetstream()

    async def publish(self, data: bytes, attributes: Mapping[str, str] | None = None) -> None:
        js = self._publisher()
        with _translated():
            await js.publish(self.topic, data, headers=_headers(attributes))

    async def publish_many(self, items: Sequence[Item]) -> None:
        # Windows no wider than publish_async's own cap (4,000 unanswered), so no call blocks on
        # its semaphore without a deadline when the server stops answering.
        raw = await self._raw_publisher(items)
        for first in range(0, len(items), PUBLISH_WINDOW):
            window = items[first : first + PUBLISH_WINDOW]
            if raw is not None:
                with _translated():
                    await raw.publish(self.topic, [data for data, _ in window])
            else:
                await self._publish_window(window)

    async def _raw_publisher(self, items: Sequence[Item]) -> RawPublisher | None:
        """The framed fast path, for messages without attributes (the simulator's)."""
        nc = self._client()
        if not hasattr(nc, "_send_command") or any(
            attrs or len(data) > nc.max_payload for data, attrs in items
        ):
            return None
        if not nc.is_connected:
            raise BusUnavailable(f"NATS connection to {self.server} is down; reconnecting")
        if self._raw is None or self._raw.nc is not nc:
            self._raw = RawPublisher(nc)
            with _translated():
                await self._raw.start()
        return self._raw

    async def _publish_window(self, items: Sequence[Item]) -> None:
        js = self._publisher()
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

    async def _fetching(self) -> PullFetcher:
        if self._fetcher is None:
            with _translated():
                await self._jetstream().consumer_info(self.stream, self.consumer)
                fetcher = PullFetcher(self._client(), self.stream, self.consumer)
                await fetcher.start()
            self._fetcher = fetcher
        return self._fetcher

    async def pull(self, max_messages: int, timeout: float) -> list[Message]:
        fetcher = await self._fetching()
        if not self._client().is_connected:
            raise BusUnavailable(f"NATS is reconnecting to {self.server}")
        with _translated():
            msgs = await fetcher.fetch(max_messages, timeout)
        for msg in msgs:
            self._unsettled[msg.reply] = msg
        return [Message(msg.data, _attributes(msg), msg, message_id(msg.reply)) for msg in msgs]

    async def ack(self, messages: Sequence[Message]) -> None:
        await self._settle(messages, nak=False)

    async def nack(self, messages: Sequence[Message]) -> None:
        await self._settle(messages, nak=True)

    async def _settle(self, messages: Sequence[Message], nak: bool) -> None:
        """Send every ack (or nak) without waiting, then one flush round trip for the lot."""
        nc = self._client()
        replies = [message.handle.reply for message in messages]
        with _translated():
            await publish_empty_many(nc, replies, b"-NAK" if nak else b"")
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
        if self._nc is None:
            # Still connecting: connect() reports the failure once, as one error.
            self._connecting_error = exc
            return
        log.warning("NATS: %r", exc)

    async def _on_disconnected(self) -> None:
        if self._nc is None:
            return  # our own close()
        log.warning("NATS lost its connection to %s; reconnecting", self.server)

    async def _on_reconnected(self) -> None:
        log.info("NATS reconnected to %s", self.server)


def _credentials(user: str | None, password: str | None) -> dict[str, str]:
    """nats.connect's keyword arguments for the URL's user info (`nats://TOKEN@host` is a token)."""
    if user and password:
        return {"user": unquote(user), "password": unquote(password)}
    if user:
        return {"token": unquote(user)}
    return {}
