"""The Google Cloud Pub/Sub bus (pubsub://PROJECT_ID): topic, pull subscription, acks by RPC."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeVar
from urllib.parse import urlsplit

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1
from google.protobuf import duration_pb2
from google.pubsub_v1.types import ReceivedMessage

from weatherpipe.bus.base import Bus, Message
from weatherpipe.errors import BusError, BusNotSetUp, BusUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

ACK_DEADLINE_SECONDS = 60
RETENTION_SECONDS = 7 * 24 * 3600
# The service returns at most this many messages per Pull and takes this many ack ids per call.
PULL_LIMIT = 1_000
RPC_TIMEOUT_SECONDS = 10.0
EMPTY_PULL_PAUSE_SECONDS = 0.05


@contextmanager
def _translated() -> Iterator[None]:
    """Turn google-api-core's exceptions into weatherpipe's at this edge."""
    try:
        yield
    except gexc.NotFound as exc:
        raise BusNotSetUp(f"Pub/Sub: {exc.message}: run `weatherpipe bus setup`") from exc
    except (
        gexc.ServiceUnavailable,
        gexc.DeadlineExceeded,
        gexc.RetryError,
        gexc.InternalServerError,
        gexc.TooManyRequests,
        TimeoutError,
        OSError,
    ) as exc:
        raise BusUnavailable(f"Pub/Sub unreachable: {exc!r}") from exc
    except gexc.GoogleAPICallError as exc:
        raise BusError(f"Pub/Sub: {exc!r}") from exc


async def _call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one blocking client call in a thread, its errors translated."""
    with _translated():
        return await asyncio.to_thread(function, *args, **kwargs)


async def _call_tolerating(
    tolerated: type[Exception], function: Callable[..., object], **kwargs: Any
) -> None:
    """Like _call, for a call whose `tolerated` error means the job is already done."""
    with _translated(), suppress(tolerated):
        await asyncio.to_thread(function, **kwargs)


class PubSubBus(Bus):
    """Topic and pull subscription named as configured, in project PROJECT_ID.

    Honours PUBSUB_EMULATOR_HOST (read by the Google client itself). Messages are pulled with
    the unary Pull RPC, so exactly what the caller asked for is in flight (the flow control);
    see docs/brokers.md for why not streaming pull.
    """

    scheme = "pubsub"

    def __init__(self, url: str, topic: str, subscription: str) -> None:
        super().__init__(url, topic, subscription)
        self.project = urlsplit(url).netloc
        self.topic_path = f"projects/{self.project}/topics/{topic}"
        self.subscription_path = f"projects/{self.project}/subscriptions/{subscription}"
        self._publisher: pubsub_v1.PublisherClient | None = None
        self._subscriber: pubsub_v1.SubscriberClient | None = None
        self._held: set[str] = set()

    async def connect(self) -> None:
        if self._publisher is None:
            self._publisher = pubsub_v1.PublisherClient()
            self._subscriber = pubsub_v1.SubscriberClient()
        await self.ping()

    async def close(self) -> None:
        if self._held and self._subscriber is not None:
            # Hand back what this process holds, so it is redelivered now, not at its deadline.
            await self._modify_deadline(list(self._held), 0)
            self._held.clear()
        publisher, subscriber = self._publisher, self._subscriber
        self._publisher = self._subscriber = None
        if publisher is not None:
            await asyncio.to_thread(publisher.stop)
        if subscriber is not None:
            await asyncio.to_thread(subscriber.close)

    def _clients(self) -> tuple[pubsub_v1.PublisherClient, pubsub_v1.SubscriberClient]:
        if self._publisher is None or self._subscriber is None:
            raise BusUnavailable("Pub/Sub bus is not connected: call connect() first")
        return self._publisher, self._subscriber

    async def setup(self) -> None:
        publisher, subscriber = self._clients()
        await _call_tolerating(
            gexc.AlreadyExists,
            publisher.create_topic,
            name=self.topic_path,
            timeout=RPC_TIMEOUT_SECONDS,
        )
        request = {
            "name": self.subscription_path,
            "topic": self.topic_path,
            "ack_deadline_seconds": ACK_DEADLINE_SECONDS,
            "message_retention_duration": duration_pb2.Duration(seconds=RETENTION_SECONDS),
            "expiration_policy": {},  # no ttl: never expires while ingest is stopped
        }
        await _call_tolerating(
            gexc.AlreadyExists,
            subscriber.create_subscription,
            request=request,
            timeout=RPC_TIMEOUT_SECONDS,
        )

    async def publish(self, data: bytes, attributes: Mapping[str, str] | None = None) -> None:
        await self.publish_many([(data, attributes)])

    async def publish_many(self, items: Sequence[tuple[bytes, Mapping[str, str] | None]]) -> None:
        publisher, _ = self._clients()
        # The client batches these into few Publish RPCs on its own threads.
        with _translated():
            futures = [
                asyncio.wrap_future(publisher.publish(self.topic_path, data, **dict(attrs or {})))
                for data, attrs in items
            ]
            await asyncio.wait_for(asyncio.gather(*futures), RPC_TIMEOUT_SECONDS + len(items) / 500)

    async def pull(self, max_messages: int, timeout: float) -> list[Message]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            received = await self._pull_once(max_messages, max(remaining, 0.1))
            if received or remaining <= EMPTY_PULL_PAUSE_SECONDS:
                break
            # The emulator answers an empty Pull at once; the service waits a little itself.
            await asyncio.sleep(EMPTY_PULL_PAUSE_SECONDS)
        self._held.update(m.ack_id for m in received)
        return [
            Message(m.message.data, dict(m.message.attributes), m.ack_id, self._message_id(m))
            for m in received
        ]

    def _message_id(self, received: ReceivedMessage) -> str:
        """The service's message_id (unique within the topic, the same on redelivery) with the
        publish time: the emulator counts ids from 1 again after a restart."""
        published = received.message._pb.publish_time
        stamp = f"{published.seconds}.{published.nanos:09d}"
        return f"pubsub:{self.topic_path}:{received.message.message_id}:{stamp}"

    async def _pull_once(self, max_messages: int, timeout: float) -> list[ReceivedMessage]:
        """One Pull RPC per 1,000 messages wanted, side by side."""
        _, subscriber = self._clients()
        sizes = [min(PULL_LIMIT, max_messages - n) for n in range(0, max_messages, PULL_LIMIT)]
        calls = [
            _call(
                subscriber.pull,
                request={"subscription": self.subscription_path, "max_messages": size},
                timeout=timeout,
                retry=None,
            )
            for size in sizes
        ]
        try:
            responses = await asyncio.gather(*calls)
        except BusUnavailable as exc:
            if isinstance(exc.__cause__, gexc.DeadlineExceeded):
                return []  # waited the whole timeout for a message that did not come
            raise
        return [m for response in responses for m in response.received_messages]

    async def ack(self, messages: Sequence[Message]) -> None:
        _, subscriber = self._clients()
        ack_ids = [message.handle for message in messages]
        for first in range(0, len(ack_ids), PULL_LIMIT):
            request = {
                "subscription": self.subscription_path,
                "ack_ids": ack_ids[first : first + PULL_LIMIT],
            }
            await _call(subscriber.acknowledge, request=request, timeout=RPC_TIMEOUT_SECONDS)
        self._held.difference_update(ack_ids)

    async def nack(self, messages: Sequence[Message]) -> None:
        ack_ids = [message.handle for message in messages]
        await self._modify_deadline(ack_ids, 0)  # a deadline of 0: redelivered at once
        self._held.difference_update(ack_ids)

    async def _modify_deadline(self, ack_ids: list[str], seconds: int) -> None:
        _, subscriber = self._clients()
        for first in range(0, len(ack_ids), PULL_LIMIT):
            request = {
                "subscription": self.subscription_path,
                "ack_ids": ack_ids[first : first + PULL_LIMIT],
                "ack_deadline_seconds": seconds,
            }
            await _call(
                subscriber.modify_ack_deadline, request=request, timeout=RPC_TIMEOUT_SECONDS
            )

    async def ping(self) -> None:
        publisher, _ = self._clients()
        # NotFound means the service answered; PermissionDenied too (a publish-only account).
        with suppress(BusNotSetUp):
            await _call_tolerating(
                gexc.PermissionDenied,
                publisher.get_topic,
                topic=self.topic_path,
                timeout=5.0,
                retry=None,
            )

    async def lag(self) -> int | None:
        return None  # only Cloud Monitoring knows the backlog; not worth a dependency here

    async def delete(self) -> None:
        """Delete the subscription and the topic (tests clean up with this)."""
        publisher, subscriber = self._clients()
        with suppress(BusNotSetUp):
            await _call(
                subscriber.delete_subscription,
                subscription=self.subscription_path,
                timeout=RPC_TIMEOUT_SECONDS,
            )
        with suppress(BusNotSetUp):
            await _call(publisher.delete_topic, topic=self.topic_path, timeout=RPC_TIMEOUT_SECONDS)
