"""The ingest worker: pull, decode, batch, insert in one transaction, ack only after commit.

A batch the database refuses (a value out of range, a constraint) is split in halves until the
refused messages are found; they become dead letters with the database's reason and the rest
is stored, so one hostile message never blocks its neighbours.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from weatherpipe.bus.base import Bus, Message
from weatherpipe.errors import (
    BusError,
    BusUnavailable,
    DecodeError,
    StorageError,
    StorageRefused,
    StorageUnavailable,
)
from weatherpipe.ingest.admission import Admission
from weatherpipe.ingest.lean import TOPIC_DEVICE, complete
from weatherpipe.ingest.refusals import bare, dead_letter
from weatherpipe.lifecycle import pause
from weatherpipe.reading import Reading, decode_many
from weatherpipe.storage.ingest import ReadingSink
from weatherpipe.storage.rows import BatchResult, DeadLetter, Prepared

log = logging.getLogger(__name__)
MAX_BACKOFF = 5.0
QUIET_SECONDS = 0.05

# Returns why a message must be refused (e.g. a bad signature), or None to accept it.
Verifier = Callable[[Message], str | None]
# For each message, its Reading or why it is not one (reading.decode_many with a window).
Decoder = Callable[[list[bytes]], list[Reading | DecodeError]]
# What a batch is split into when the database refuses it: a reading with its message, or a
# dead letter.
Item = tuple[Reading, Message] | DeadLetter


@dataclass(slots=True)
class Batch:
    """A pulled batch: each message's reading or dead letter, and the readings' writes
    rendered ahead (None when rendering refused a value: the batch is then split)."""

    messages: list[Message]
    readings: list[Reading]
    sources: list[Message]  # the message of each reading
    dead: list[DeadLetter]
    prepared: Prepared | None

    def items(self) -> list[Item]:
        return [*zip(self.readings, self.sources, strict=True), *self.dead]


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
        bus: Bus | None,
        repo: ReadingSink,
        *,
        batch_size: int = 2000,
        batch_seconds: float = 0.5,
        writers: int = 1,
        verifier: Verifier | None = None,
        on_batch: Callable[[BatchResult, float], None] | None = None,
        decoder: Decoder = decode_many,
        admission: Admission | None = None,
    ) -> None:
        self.bus = bus
        self.repo = repo
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.verifier = verifier
        self.on_batch = on_batch
        self.writers = writers
        self.decoder = decoder
        # Without a registry, only the place is checked: a reading must name its own.
        self.admission = admission or Admission(None)
        self.stats = IngestStats()

    async def run(self, stop: asyncio.Event) -> IngestStats:
        """Work until `stop` is set; the batches in hand are always stored and acked first.

        Batches overlap: while up to `writers` are written (each in a thread and a transaction
        of its own, waiting on the database) the next is pulled, decoded and rendered. Each is
        acked only after its own commit, so they may commit in any order. A write that fails
        for good is logged when it fails and stops the worker at its next turn.
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
                if messages:
                    await self.refresh_registry()
                batch = self.prepare(messages) if messages else None
                for task in [t for t in storing if t.done()]:
                    storing.discard(task)
                    task.result()  # a write that failed for good stops the worker
                while len(storing) >= self.writers:
                    done, storing = await asyncio.wait(storing, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()
                if batch is not None:
                    storing.add(asyncio.create_task(self._store(batch, stop)))
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
        messages = await self.source.pull(self.batch_size, timeout=min(1.0, self.batch_seconds * 2))
        deadline = time.monotonic() + self.batch_seconds
        while messages and len(messages) < self.batch_size and not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            # A quiet bus ends the batch early: a fleet's tick arrives as one burst, and waiting
            # out batch_seconds after it would only add to every reading's latency.
            more = await self.source.pull(
                self.batch_size - len(messages), timeout=min(remaining, QUIET_SECONDS)
            )
            if not more:
                break
            messages.extend(more)
        return messages

    def prepare(self, messages: list[Message]) -> Batch:
        """Each message's reading or dead letter (with the reason), the readings rendered."""
        batch = self.sort(messages)
        batch.prepared = self._render_ahead(batch.readings)
        return batch

    def sort(self, messages: list[Message]) -> Batch:
        """Each message's reading or dead letter (with the reason), not rendered yet."""
        readings: list[Reading] = []
        sources: list[Message] = []
        dead: list[DeadLetter] = []
        accepted = messages
        if self.verifier is not None:
            accepted = []
            for message in messages:
                refusal = self.verifier(message)
                if refusal is None:
                    accepted.append(message)
                else:
                    dead.append(dead_letter(message, refusal))
        accepted, bodies = self._bodies(accepted, dead)
        decoded = self.decoder(bodies)
        valid: list[Reading] = []
        carriers: list[Message] = []
        for message, result in zip(accepted, decoded, strict=True):
            if isinstance(result, DecodeError):
                dead.append(dead_letter(message, result.reason))
            else:
                valid.append(result)
                carriers.append(message)
        for admitted, message in zip(self.admission.admit(valid), carriers, strict=True):
            if isinstance(admitted, str):
                dead.append(dead_letter(message, admitted))
            else:
                readings.append(admitted)
                sources.append(message)
        return Batch(messages, readings, sources, dead, None)

    @staticmethod
    def _bodies(
        messages: list[Message], dead: list[DeadLetter]
    ) -> tuple[list[Message], list[bytes]]:
        """Each message's body in the wire's full form: a per-device topic's lean body is
        completed with its device and the time received (one that names another device is
        a dead letter)."""
        if not any(TOPIC_DEVICE in m.attributes for m in messages):
            return messages, [m.data for m in messages]
        received = datetime.now(UTC)
        kept: list[Message] = []
        bodies: list[bytes] = []
        for message in messages:
            device = message.attributes.get(TOPIC_DEVICE)
            try:
                body = message.data if device is None else complete(message.data, device, received)
            except DecodeError as exc:
                dead.append(dead_letter(message, exc.reason))
                continue
            kept.append(message)
            bodies.append(body)
        return kept, bodies

    def _render(self, readings: list[Reading]) -> Prepared:
        try:
            return self.repo.prepare(readings)
        except (ValueError, OverflowError) as exc:  # a value SQL cannot hold
            raise StorageRefused(f"cannot be written as SQL: {exc}") from exc

    def _render_ahead(self, readings: list[Reading]) -> Prepared | None:
        try:
            return self._render(readings)
        except StorageRefused:
            return None  # _write_batch renders again, to split the batch around the value

    @property
    def source(self) -> Bus:
        """The bus it pulls from (none for a worker that only stores what it is handed)."""
        if self.bus is None:
            raise RuntimeError("this ingest worker has no bus: it only stores messages handed in")
        return self.bus

    async def store_messages(
        self, messages: list[Message], stop: asyncio.Event
    ) -> tuple[Batch, BatchResult | None]:
        """Store messages handed in (not pulled: nothing to ack), exactly as a pulled batch;
        the batch with its dead letters, and the result (None: stopped with the database
        down, nothing stored)."""
        await self.refresh_registry()
        batch = self.prepare(messages)
        result = await self._write_batch(batch, stop)
        if result is not None:
            self._count(len(messages), result, 0.0)
        return batch, result

    async def store_new(
        self, readings: list[Reading], dead: list[DeadLetter], stop: asyncio.Event
    ) -> BatchResult | None:
        """Readings and dead letters in one transaction, on the condition that every reading's
        key is new: KeysTaken (nothing written) if one is stored or there twice, StorageRefused
        if the database refuses a value. None: stopped with the database down."""
        result = await self._write(self._render(readings), dead, stop, only_new=True)
        if result is not None:
            self._count(len(readings) + len(dead), result, 0.0)
        return result

    async def handle(self, messages: list[Message], stop: asyncio.Event) -> None:
        """Store one batch (retrying while the database is down), then ack it."""
        await self.refresh_registry()
        await self._store(self.prepare(messages), stop)

    async def refresh_registry(self) -> None:
        """A fresh registry snapshot when the one in hand is old (a down database keeps it)."""
        if not self.admission.stale:
            return
        try:
            await asyncio.to_thread(self.admission.refresh)
        except StorageError as exc:
            log.warning("could not read the device registry (%s); using the last snapshot", exc)

    async def _store(self, batch: Batch, stop: asyncio.Event) -> None:
        started = time.monotonic()
        try:
            result = await self._write_batch(batch, stop)
        except Exception as exc:
            log.error("writing a batch of %d messages failed: %s", len(batch.messages), exc)
            raise
        if result is None:
            log.warning(
                "stopping with the batch not fully stored (database down, or mid-split); "
                "%d messages handed back",
                len(batch.messages),
            )
            await self._nack(batch.messages)
            return
        try:
            await self.source.ack(batch.messages)
        except BusError as exc:
            # Stored already: the broker will redeliver and the key will drop the copies.
            log.warning("ack failed after commit (%s); expect redelivered duplicates", exc)
        self._count(len(batch.messages), result, time.monotonic() - started)

    async def _write_batch(self, batch: Batch, stop: asyncio.Event) -> BatchResult | None:
        """The batch stored whole, or split around what the database refuses; None if the
        worker was stopped while the database was down or while splitting."""
        try:
            prepared = batch.prepared or self._render(batch.readings)
            return await self._write(prepared, batch.dead, stop)
        except StorageRefused as exc:
            refused = exc
        log.warning(
            "the database refused a batch of %d messages (%s); splitting it to find the "
            "refused ones",
            len(batch.messages),
            refused.reason,
        )
        items = batch.items()
        if len(items) == 1:
            return await self._dead_letter(items[0], refused.reason, stop)
        return await self._split(items, stop)

    async def _split(self, items: Sequence[Item], stop: asyncio.Event) -> BatchResult | None:
        """Store `items` in two halves, each split again while refused, down to the single
        messages the database refuses: those become dead letters with its reason."""
        total = BatchResult(0, 0, 0)
        middle = len(items) // 2
        for half in (items[:middle], items[middle:]):
            if stop.is_set():
                return None  # handed back: what is stored comes back as duplicates, dropped
            readings = [item[0] for item in half if isinstance(item, tuple)]
            dead = [item for item in half if isinstance(item, DeadLetter)]
            try:
                result = await self._write(self._render(readings), dead, stop)
            except StorageRefused as exc:
                if len(half) == 1:
                    result = await self._dead_letter(half[0], exc.reason, stop)
                else:
                    result = await self._split(half, stop)
            if result is None:
                return None
            total = BatchResult(
                total.stored + result.stored,
                total.duplicates + result.duplicates,
                total.dead + result.dead,
            )
        return total

    async def _dead_letter(
        self, item: Item, reason: str, stop: asyncio.Event
    ) -> BatchResult | None:
        """One message the database refused (`reason`), written as a dead letter."""
        if isinstance(item, DeadLetter):
            letter = bare(item, f"{item.reason}; the database refused this dead letter: {reason}")
        else:
            letter = dead_letter(item[1], f"refused by the database: {reason}")
        log.warning("dead-lettered a message the database refuses: %s", letter.reason)
        empty = self._render([])
        try:
            return await self._write(empty, [letter], stop)
        except StorageRefused as exc:
            try:
                return await self._write(empty, [bare(letter, letter.reason)], stop)
            except StorageRefused:
                raise StorageError(f"the database refuses even a bare dead letter: {exc}") from exc

    async def _write(
        self,
        prepared: Prepared,
        dead: Sequence[DeadLetter],
        stop: asyncio.Event,
        *,
        only_new: bool = False,
    ) -> BatchResult | None:
        """One transaction, retried while the database is unavailable; None if stopped."""
        backoff = 0.2
        store = (
            functools.partial(self.repo.store_batch, only_new=True)
            if only_new
            else self.repo.store_batch
        )
        while True:
            try:
                return await asyncio.to_thread(store, prepared, dead)
            except StorageUnavailable as exc:
                if stop.is_set():
                    return None
                log.warning("database unavailable (%s); retrying in %.1fs", exc, backoff)
                await pause(backoff, stop)
                backoff = min(backoff * 2, MAX_BACKOFF)

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
            await self.source.nack(messages)
        except BusError as exc:
            log.warning("nack failed (%s); the broker redelivers after its ack wait", exc)
