"""The message bus interface: publish bytes to a topic, pull them from a subscription, ack."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self


@dataclass(slots=True)
class Message:
    """One message pulled from a subscription; `handle` is the backend's ack token.

    `id` is the broker's own identity of the message: the same on every redelivery, never that
    of another message (None where the broker has none, as MQTT)."""

    data: bytes
    attributes: Mapping[str, str] = field(default_factory=dict)
    handle: Any = None
    id: str | None = None


class Bus(ABC):
    """A topic to publish to and a subscription to pull from, on one broker.

    Delivery is at least once: a pulled message that is not acked (the process dies, or `nack`)
    comes back later. Every method raises only weatherpipe's BusError family.
    """

    scheme: str = ""
    # Whether another process (a `weatherpipe` stage, a device) can reach the same topic.
    crosses_processes: bool = True
    # Whether the backend also takes messages on per-device topics (MQTT: `weather/+/telemetry`).
    per_device_topics: bool = False
    # The per-device topic pattern (one `+` level names the device); "" for none. A message
    # from such a topic carries the device in its `topic_device` attribute.
    device_topic: str = ""

    def __init__(self, url: str, topic: str, subscription: str) -> None:
        self.url = url
        self.topic = topic
        self.subscription = subscription

    @abstractmethod
    async def connect(self) -> None:
        """Open the connection (BusUnavailable if the broker cannot be reached)."""

    @abstractmethod
    async def close(self) -> None:
        """Close the connection; messages pulled and not acked will be redelivered."""

    @abstractmethod
    async def setup(self) -> None:
        """Create the topic and the subscription if they do not exist (idempotent)."""

    @abstractmethod
    async def publish(self, data: bytes, attributes: Mapping[str, str] | None = None) -> None:
        """Publish one message and wait until the broker has accepted it."""

    async def publish_many(self, items: Sequence[tuple[bytes, Mapping[str, str] | None]]) -> None:
        """Publish several messages; backends override this to pipeline them."""
        for data, attributes in items:
            await self.publish(data, attributes)

    @abstractmethod
    async def pull(self, max_messages: int, timeout: float) -> list[Message]:
        """Up to `max_messages` messages, waiting at most `timeout` seconds for the first."""

    @abstractmethod
    async def ack(self, messages: Sequence[Message]) -> None:
        """Settle messages for good: they will not be delivered again."""

    @abstractmethod
    async def nack(self, messages: Sequence[Message]) -> None:
        """Hand messages back for redelivery."""

    async def ping(self) -> None:
        """Raise BusUnavailable unless the broker answers now (backends override this)."""
        return None

    async def lag(self) -> int | None:
        """Messages waiting in the subscription, where the broker reports it."""
        return None

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
