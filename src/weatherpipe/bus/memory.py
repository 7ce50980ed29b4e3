"""The in-process bus (memory://NAME): at-least-once queues shared by every bus of one process."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from weatherpipe.bus.base import Bus, Message
from weatherpipe.errors import BusNotSetUp

POLL_SECONDS = 0.005
ACK_DEADLINE_SECONDS = 60.0


@dataclass
class _Queue:
    """One subscription: waiting messages and the ones pulled but not yet settled."""

    ready: deque[tuple[int, bytes, dict[str, str]]] = field(default_factory=deque)
    in_flight: dict[int, tuple[float, bytes, dict[str, str]]] = field(default_factory=dict)

    def expire(self, now: float) -> None:
        # in_flight is in the order messages were pulled: the oldest come first.
        expired = []
        for msg_id, (pulled_at, data, attrs) in self.in_flight.items():
            if now - pulled_at <= ACK_DEADLINE_SECONDS:
                break
            expired.append((msg_id, data, attrs))
        for entry in reversed(expired):
            del self.in_flight[entry[0]]
            self.ready.appendleft(entry)


@dataclass
class _Broker:
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Message ids count from 0 in every process: the incarnation keeps them apart.
    incarnation: str = field(default_factory=lambda: uuid.uuid4().hex)
    ids: itertools.count[int] = field(default_factory=itertools.count)
    topics: dict[str, dict[str, _Queue]] = field(default_factory=dict)


_brokers: dict[str, _Broker] = {}
_registry_lock = threading.Lock()


def _broker(name: str) -> _Broker:
    with _registry_lock:
        return _brokers.setdefault(name, _Broker())


def reset() -> None:
    """Forget every in-process topic (for tests)."""
    with _registry_lock:
        _brokers.clear()


class MemoryBus(Bus):
    """Queues in this process; messages live as long as the process does."""

    scheme = "memory"
    crosses_processes = False

    def __init__(self, url: str, topic: str, subscription: str) -> None:
        super().__init__(url, topic, subscription)
        self._broker = _broker(url.split("://", 1)[1])
        self._mine: set[int] = set()

    async def connect(self) -> None:
        await self.setup()

    async def close(self) -> None:
        await self.nack([Message(b"", {}, msg_id) for msg_id in list(self._mine)])

    async def setup(self) -> None:
        with self._broker.lock:
            self._broker.topics.setdefault(self.topic, {}).setdefault(self.subscription, _Queue())

    async def publish(self, data: bytes, attributes: Mapping[str, str] | None = None) -> None:
        with self._broker.lock:
            msg_id = next(self._broker.ids)
            for queue in self._broker.topics.setdefault(self.topic, {}).values():
                queue.ready.append((msg_id, data, dict(attributes or {})))

    def _queue(self) -> _Queue:
        try:
            return self._broker.topics[self.topic][self.subscription]
        except KeyError:
            raise BusNotSetUp(f"no subscription {self.subscription!r} on {self.topic!r}") from None

    def _take(self, max_messages: int) -> list[Message]:
        now = time.monotonic()
        incarnation = self._broker.incarnation
        with self._broker.lock:
            queue = self._queue()
            queue.expire(now)
            taken: list[Message] = []
            while queue.ready and len(taken) < max_messages:
                msg_id, data, attrs = queue.ready.popleft()
                queue.in_flight[msg_id] = (now, data, attrs)
                self._mine.add(msg_id)
                taken.append(Message(data, attrs, msg_id, f"memory:{incarnation}:{msg_id}"))
            return taken

    async def pull(self, max_messages: int, timeout: float) -> list[Message]:
        deadline = time.monotonic() + timeout
        while True:
            taken = self._take(max_messages)
            if taken or time.monotonic() >= deadline:
                return taken
            await asyncio.sleep(POLL_SECONDS)

    async def ack(self, messages: Sequence[Message]) -> None:
        with self._broker.lock:
            queue = self._queue()
            for message in messages:
                queue.in_flight.pop(message.handle, None)
                self._mine.discard(message.handle)

    async def nack(self, messages: Sequence[Message]) -> None:
        with self._broker.lock:
            queue = self._queue()
            for message in reversed(messages):
                entry = queue.in_flight.pop(message.handle, None)
                self._mine.discard(message.handle)
                if entry is not None:
                    queue.ready.appendleft((message.handle, entry[1], entry[2]))

    async def lag(self) -> int | None:
        with self._broker.lock:
            return len(self._queue().ready)
