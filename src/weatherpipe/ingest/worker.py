"""The ingest worker: pull, decode, batch, insert in one transaction, ack only after commit."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from weatherpipe.bus.base import Bus, Message
from weatherpipe.errors import BusError, BusUnavailable, DecodeError, StorageUnavailable
from weatherpipe.lifecycle import pause
from weatherpipe.reading import Reading, decode_many
from weatherpipe.storage.ingest import ReadingSink
from weatherpipe.storage.rows import BatchResult, DeadLetter, Prepared

log = logging.getLogger(__name__)
MAX_BACKOFF = 5.0
QUIET_SECONDS = 0.05

# Returns why a message must be refused (e.g. a bad signature), or None to accept it.
Verifier = Callable[[Message], str | None]


@dataclass
class IngestStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    dead: int = 0
    batches: int = 0
    last_batch_seconds: float = 0.0


class IngestWorker:
    """Moves readings from a bus subscription into the database, exactly once per key."""

    def __init__(
        self,
        bus: Bus,
        repo: ReadingSink,
        *,
        batch_size: int = 2000,
        batch_seconds: float = 0.5,
        writers: int = 1,
        verifier: Verifier | None = None,
        on_batch: Callable[[BatchResult, float], None] | None = None,
    ) -> None:
        self.bus = bus
        self.repo = repo
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.verifier = verifier
        self.on_batch = on_batch
        self.writers = writers
        self.stats = IngestStats()

    async def run(self, stop: asyncio.Event) -> IngestStats:
        """Work until `stop` is set; the batches in hand are always stored and acked first.

        Batches overlap: while up to `writers` are written (each in a thread and a transaction
        of its own, waiting on the database) the next is pulled, decoded and rendered. Each is
        acked only after its own commit, so they may commit in any order.
        """
        backoff = 0.1
        storing: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                try:
                    messages = await self._collect(stop)
                except BusUnavailable as exc:
                    log.warning("bus unavailable (%s); retrying in %.1fs", exc, backoff)
                    await pause(backoff, stop)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                backoff = 0.1
                batch = self.prepare(messages) if messages else None
                while len(storing) >= self.writers:
                    done, storing = await asyncio.wait(storing, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()  # a write that failed for good stops the worker
                if batch is not None:
                    storing.add(asyncio.create_task(self._store(messages, *batch, stop)))
                    # Let it start writing before the next batch fills: a bus with messages
                    # ready (the in-process one) answers pulls without ever yielding.
                    await asyncio.sleep(0)
        finally:
            # Every batch in hand is written (or has failed) before the worker returns.
            outcomes = await asyncio.gather(*storing, return_exceptions=True)
            failures = [o for o in outcomes if isinstance(o, BaseException)]
            if failures:
                raise failures[0]
        return self.stats

    async def _collect(self, stop: asyncio.Event) -> list[Message]:
        """Fill a batch: up to batch_size messages, at most batch_seconds after the first, and
        no longer than the bus stays quiet for QUIET_SECONDS."""
        messages = await self.bus.pull(self.batch_size, timeout=min(1.0, self.batch_seconds * 2))
        deadline = time.monotonic() + self.batch_seconds
        while messages and len(messages) < self.batch_size and not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            # A quiet bus ends the batch early: a fleet's tick arrives as one burst, and waiting
            # out batch_seconds after it would only add to every reading's latency.
            more = await self.bus.pull(
                self.batch_size - len(messages), timeout=min(remaining, QUIET_SECONDS)
            )
            if not more:
                break
            messages.extend(more)
        return messages

    def split(self, messages: list[Message]) -> tuple[list[Reading], list[DeadLetter]]:
        """Readings, and dead letters for every message that is not one (with the reason)."""
        good: list[Reading] = []
        dead: list[DeadLetter] = []
        accepted = messages
        if self.verifier is not None:
            accepted = []
            for message in messages:
                refusal = self.verifier(message)
                if refusal is None:
                    accepted.append(message)
                else:
                    dead.append(DeadLetter(message.data, refusal, message.attributes))
        decoded = decode_many([message.data for message in accepted])
        for message, result in zip(accepted, decoded, strict=True):
            if isinstance(result, DecodeError):
                dead.append(DeadLetter(message.data, result.reason, message.attributes))
            else:
                good.append(result)
        return good, dead

    def prepare(self, messages: list[Message]) -> tuple[Prepared, list[DeadLetter]]:
        """The batch's readings rendered for their transaction, and its dead letters."""
        readings, dead = self.split(messages)
        return self.repo.prepare(readings), dead

    async def handle(self, messages: list[Message], stop: asyncio.Event) -> None:
        """Store one batch (retrying while the database is down), then ack it."""
        await self._store(messages, *self.prepare(messages), stop)

    async def _store(
        self,
        messages: list[Message],
        readings: Prepared,
        dead: list[DeadLetter],
        stop: asyncio.Event,
    ) -> None:
        started = time.monotonic()
        backoff = 0.2
        while True:
            try:
                result = await asyncio.to_thread(self.repo.store_batch, readings, dead)
                break
            except StorageUnavailable as exc:
                if stop.is_set():
                    log.warning(
                        "stopping with the database down; %d messages stay unacked", len(messages)
                    )
                    await self._nack(messages)
                    return
                log.warning("database unavailable (%s); retrying in %.1fs", exc, backoff)
                await pause(backoff, stop)
                backoff = min(backoff * 2, MAX_BACKOFF)
        try:
            await self.bus.ack(messages)
        except BusError as exc:
            # Stored already: the broker will redeliver and the key will drop the copies.
            log.warning("ack failed after commit (%s); expect redelivered duplicates", exc)
        elapsed = time.monotonic() - started
        self._count(len(messages), result, elapsed)

    def _count(self, received: int, result: BatchResult, elapsed: float) -> None:
        s = self.stats
        s.received += received
        s.stored += result.stored
        s.duplicates += result.duplicates
        s.dead += result.dead
        s.batches += 1
        s.last_batch_seconds = elapsed
        if self.on_batch:
            self.on_batch(result, elapsed)

    async def _nack(self, messages: list[Message]) -> None:
        try:
            await self.bus.nack(messages)
        except BusError as exc:
            log.warning("nack failed (%s); the broker redelivers after its ack wait", exc)
