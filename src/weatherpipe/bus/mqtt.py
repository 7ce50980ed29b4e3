"""The MQTT 5 bus (mqtt://host:port): QoS 1, a shared subscription, persistent sessions."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from weatherpipe.bus.base import Bus, Message
from weatherpipe.bus.slots import Slot
from weatherpipe.bus.topics import TOPIC_DEVICE, topic_device
from weatherpipe.errors import BusError, BusNotSetUp, BusUnavailable

log = logging.getLogger(__name__)

DEFAULT_PORT = 1883
KEEPALIVE_SECONDS = 30
CONNECT_TIMEOUT_SECONDS = 5.0
PUBLISH_TIMEOUT_SECONDS = 10.0
# A week: an ingest process that is down longer than this loses its queued share.
SESSION_EXPIRY_SECONDS = 7 * 24 * 3600
# Unacked messages the broker may push to one consumer; it also bounds our local queue.
RECEIVE_MAXIMUM = 4_000
NO_MATCHING_SUBSCRIBERS = 0x10
_CLIENT_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class _Handle:
    """An incoming message's packet id, valid only on the connection that delivered it."""

    generation: int
    mid: int


def _options(url: str) -> tuple[str, int, dict[str, str]]:
    parts = urlsplit(url)
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORT, options


def _user_properties(attributes: Mapping[str, str] | None) -> Properties | None:
    if not attributes:
        return None
    properties = Properties(PacketTypes.PUBLISH)
    properties.UserProperty = list(attributes.items())
    return properties


def _attributes(msg: paho.MQTTMessage) -> dict[str, str]:
    pairs = getattr(msg.properties, "UserProperty", None) or []
    return dict(pairs)


class _Connection:
    """One paho client on its network thread, bridged to an asyncio loop."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        session_expiry: int | None,
        subscribe_to: Sequence[str] = (),
    ) -> None:
        self.host, self.port = host, port
        self.client_id = client_id
        self.session_expiry = session_expiry
        self.subscribe_to = subscribe_to
        self.generation = 0
        self.messages: asyncio.Queue[tuple[int, paho.MQTTMessage]] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._connected: asyncio.Future[None] | None = None
        self._subscribed: asyncio.Future[None] | None = None
        self._lock = threading.Lock()
        self._published: dict[int, asyncio.Future[None]] = {}
        self._early: dict[int, ReasonCode] = {}
        self.client = self._build()

    def _build(self) -> paho.Client:
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=paho.MQTTv5,
            manual_ack=True,  # PUBACK only when ack() is called, after the caller's commit
        )
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        return client

    async def open(self) -> None:
        properties = Properties(PacketTypes.CONNECT)
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        if self.session_expiry is not None:
            properties.SessionExpiryInterval = self.session_expiry
        self._connected = self._loop.create_future()
        self._subscribed = self._loop.create_future()
        if not self.subscribe_to:
            self._subscribed.set_result(None)
        try:
            await asyncio.to_thread(
                self.client.connect,
                self.host,
                self.port,
                keepalive=KEEPALIVE_SECONDS,
                clean_start=self.session_expiry is None,
                properties=properties,
            )
            self.client.loop_start()
            await asyncio.wait_for(self._connected, CONNECT_TIMEOUT_SECONDS)
            await asyncio.wait_for(self._subscribed, CONNECT_TIMEOUT_SECONDS)
        except (OSError, TimeoutError) as exc:
            await self.shut()
            raise BusUnavailable(
                f"MQTT broker {self.host}:{self.port} unreachable: {exc!r}"
            ) from exc
        except BusError:
            await self.shut()
            raise

    async def shut(self) -> None:
        """Disconnect; a persistent session keeps its subscription and unacked messages."""
        await asyncio.to_thread(self._disconnect)

    def _disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self, client: paho.Client, _: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if not reason.is_failure:
            log.info(
                "MQTT %s connected (session present: %s)", self.client_id, flags.session_present
            )
            if self.subscribe_to:
                # Every time: idempotent, and needed whenever the session expired meanwhile.
                client.subscribe([(f, SubscribeOptions(qos=1)) for f in self.subscribe_to])
        self._loop.call_soon_threadsafe(self._settle_connect, reason)

    def _settle_connect(self, reason: ReasonCode) -> None:
        if self._connected is None or self._connected.done():
            return
        if reason.is_failure:
            self._connected.set_exception(BusError(f"MQTT broker refused the connection: {reason}"))
        else:
            self._connected.set_result(None)

    def _on_disconnect(
        self, _c: paho.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any
    ) -> None:
        # Packet ids of messages delivered so far mean nothing on the next connection: the
        # broker sends every unacked message again, so acks of the old ones must not be sent.
        self.generation += 1
        if reason.is_failure:
            log.warning("MQTT %s lost its connection (%s); reconnecting", self.client_id, reason)

    def _on_subscribe(
        self, _c: paho.Client, _u: Any, _mid: int, reasons: list[ReasonCode], _p: Any
    ) -> None:
        self._loop.call_soon_threadsafe(self._settle_subscribe, reasons)

    def _settle_subscribe(self, reasons: list[ReasonCode]) -> None:
        if self._subscribed is None or self._subscribed.done():
            return
        refused = [reason for reason in reasons if reason.is_failure]
        if refused:
            self._subscribed.set_exception(BusError(f"MQTT subscribe refused: {refused[0]}"))
        else:
            self._subscribed.set_result(None)

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        self._loop.call_soon_threadsafe(self.messages.put_nowait, (self.generation, msg))

    def _on_publish(self, _c: paho.Client, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        with self._lock:
            future = self._published.pop(mid, None)
            if future is None:
                self._early[mid] = reason  # the PUBACK beat publish() to registering its future
                return
        self._loop.call_soon_threadsafe(_settle_publish, future, reason)

    def publish(
        self, topic: str, data: bytes, attributes: Mapping[str, str] | None
    ) -> asyncio.Future[None]:
        """Send one QoS 1 PUBLISH; the future resolves on its PUBACK."""
        future: asyncio.Future[None] = self._loop.create_future()
        info = self.client.publish(topic, data, qos=1, properties=_user_properties(attributes))
        # Without a connection paho keeps the message and sends it once reconnected.
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            raise BusError(f"MQTT publish failed: {paho.error_string(info.rc)}")
        with self._lock:
            early = self._early.pop(info.mid, None)
            if early is None:
                self._published[info.mid] = future
        if early is not None:
            _settle_publish(future, early)
        return future

    def ack(self, handle: _Handle) -> None:
        if handle.generation == self.generation:
            self.client.ack(handle.mid, 1)


def _settle_publish(future: asyncio.Future[None], reason: ReasonCode) -> None:
    if future.done():
        return
    if reason.value == NO_MATCHING_SUBSCRIBERS:
        # The broker dropped it: nobody holds the subscription yet.
        future.set_exception(
            BusNotSetUp("no subscription on the topic: run `weatherpipe bus setup`")
        )
    elif reason.is_failure:
        future.set_exception(BusError(f"MQTT broker refused the message: {reason}"))
    else:
        future.set_result(None)


def _require_connected(connection: _Connection) -> None:
    # While paho reconnects (by itself, with backoff) the caller hears of it and backs off too.
    if not connection.client.is_connected():
        where = f"{connection.host}:{connection.port}"
        raise BusUnavailable(f"MQTT connection to {where} lost; reconnecting")


class MqttBus(Bus):
    """MQTT 5 at QoS 1; consumers share `$share/<subscription>/<topic>` in persistent sessions.

    URL options: `client_id` (a fixed consumer client id instead of the per-host slot),
    `session_expiry` (seconds the broker keeps an offline consumer's session).
    """

    scheme = "mqtt"
    per_device_topics = True

    def __init__(self, url: str, topic: str, subscription: str) -> None:
        super().__init__(url, topic, subscription)
        self.host, self.port, options = _options(url)
        self.fixed_client_id = options.get("client_id")
        self.session_expiry = int(options.get("session_expiry", SESSION_EXPIRY_SECONDS))
        base = f"{subscription}-{socket.gethostname()}"
        self._slot = Slot(_CLIENT_ID_UNSAFE.sub("_", base))
        self._publisher: _Connection | None = None
        self._consumer: _Connection | None = None

    @property
    def shared_filter(self) -> str:
        return f"$share/{self.subscription}/{self.topic}"

    @property
    def filters(self) -> list[str]:
        """The shared topic's filter, and the per-device topics' if a pattern is set."""
        shared = [self.shared_filter]
        if self.device_topic:
            shared.append(f"$share/{self.subscription}/{self.device_topic}")
        return shared

    async def connect(self) -> None:
        # Publishing needs no session: a throwaway id with a clean start.
        if self._publisher is None:
            client_id = f"wp-pub-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            connection = _Connection(self.host, self.port, client_id, session_expiry=None)
            await connection.open()
            self._publisher = connection

    async def close(self) -> None:
        publisher, consumer = self._publisher, self._consumer
        self._publisher = self._consumer = None
        if publisher is not None:
            await publisher.shut()
        if consumer is not None:
            await consumer.shut()
            self._slot.release()

    async def setup(self) -> None:
        """Create the consumer session holding the shared subscription, so messages published
        from now on are kept for it while no consumer runs."""
        await self._consumer_connection()

    async def _consumer_connection(self) -> _Connection:
        if self._consumer is None:
            client_id = self.fixed_client_id or self._slot.acquire()
            connection = _Connection(
                self.host, self.port, client_id, self.session_expiry, self.filters
            )
            try:
                await connection.open()
            except BaseException:
                self._slot.release()
                raise
            self._consumer = connection
        return self._consumer

    def _publishing(self) -> _Connection:
        if self._publisher is None:
            raise BusUnavailable("MQTT bus is not connected: call connect() first")
        _require_connected(self._publisher)
        return self._publisher

    async def publish(self, data: bytes, attributes: Mapping[str, str] | None = None) -> None:
        await self.publish_many([(data, attributes)])

    async def publish_many(self, items: Sequence[tuple[bytes, Mapping[str, str] | None]]) -> None:
        connection = self._publishing()
        futures = [connection.publish(self.topic, data, attrs) for data, attrs in items]
        # paho keeps sending while we wait, so the deadline grows with the batch.
        timeout = PUBLISH_TIMEOUT_SECONDS + len(items) / 1_000
        try:
            await asyncio.wait_for(asyncio.gather(*futures), timeout)
        except TimeoutError:
            raise BusUnavailable(f"MQTT broker did not confirm {len(items)} messages") from None

    async def pull(self, max_messages: int, timeout: float) -> list[Message]:
        connection = await self._consumer_connection()
        _require_connected(connection)
        taken: list[Message] = []
        try:
            async with asyncio.timeout(timeout):
                taken.extend(self._fresh(connection, [await connection.messages.get()]))
        except TimeoutError:
            return taken
        while len(taken) < max_messages and not connection.messages.empty():
            taken.extend(self._fresh(connection, [connection.messages.get_nowait()]))
        return taken

    def _fresh(
        self, connection: _Connection, items: list[tuple[int, paho.MQTTMessage]]
    ) -> list[Message]:
        """Messages of the current connection; older ones are coming again from the broker."""
        return [
            Message(bytes(msg.payload), self._attributes(msg), _Handle(generation, msg.mid))
            for generation, msg in items
            if generation == connection.generation
        ]

    def _attributes(self, msg: paho.MQTTMessage) -> dict[str, str]:
        """The user properties, and the device a per-device topic names (a publisher's own
        `topic_device` property is dropped: only the topic may say it)."""
        attributes = _attributes(msg)
        attributes.pop(TOPIC_DEVICE, None)
        if self.device_topic and msg.topic != self.topic:
            device = topic_device(self.device_topic, msg.topic)
            if device is not None:
                attributes[TOPIC_DEVICE] = device
        return attributes

    async def ack(self, messages: Sequence[Message]) -> None:
        connection = self._consumer
        if connection is None:
            return  # a closed session sends unacked messages again; nothing to settle here
        for message in messages:
            connection.ack(message.handle)

    async def nack(self, messages: Sequence[Message]) -> None:
        """MQTT cannot hand one message back: reconnect, and the broker resends every unacked one.

        Messages still held by the caller are sent again too (their acks are then ignored).
        """
        if not messages or self._consumer is None:
            return
        # Same client id (the slot stays ours), so the resumed session is the one holding them.
        connection = self._consumer
        await connection.shut()
        try:
            await connection.open()
        except BusError:
            self._consumer = None  # the next pull connects afresh
            self._slot.release()
            raise

    async def ping(self) -> None:
        self._publishing()
