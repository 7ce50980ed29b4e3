"""Group commit: callers that hand in messages at the same time share one transaction.

The HTTP endpoint hands each request's messages here and waits for its own answer. One writer
task takes every request that waited while the previous transaction ran (and, when it was idle,
those that arrive within `window` seconds of the first), sorts each into readings and dead
letters as ingest does, and writes them all in one transaction on the condition that every key
is new. After that commit each request is told its own part: all its readings stored.

A group that cannot be written that way is written again request by request, exactly as a
request alone is (the bus path's writer, with its split around refused values): when a key is
stored already or in two requests (a retry), when the database refuses a value, or when
anything else fails. So counts, dead letters and errors reach the request they belong to, and
each (device_id, ts) is stored once. The transaction of a group gives up when the earliest
deadline of its requests passes with the database down; all of them are then told nothing
was stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from weatherpipe.bus.base import Message
from weatherpipe.errors import KeysTaken, StorageRefused
from weatherpipe.ingest.worker import Batch, IngestWorker
from weatherpipe.storage.rows import BatchResult

log = logging.getLogger(__name__)
# Readings per transaction at most (a request bigger than that is written alone).
GROUP_LIMIT = 5000


@dataclass(frozen=True, slots=True)
class Stored:
    """One caller's outcome: its readings and dead letters, and what the database did with
    them (None: the database stayed down until the deadline, nothing was stored)."""

    batch: Batch
    result: BatchResult | None


@dataclass(slots=True)
class _Waiting:
    messages: list[Message]
    deadline: float  # monotonic
    answer: asyncio.Future[Stored]


class GroupWriter:
    """Stores the messages of concurrent callers in shared transactions, one at a time."""

    def __init__(
        self,
        worker: IngestWorker,
        *,
        window: float = 0.0,
        limit: int = GROUP_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.worker = worker
        self.window = window
        self.limit = limit
        self.clock = clock
        self.groups = 0  # transactions tried for groups of more than one request
        self._waiting: deque[_Waiting] = deque()
        self._task: asyncio.Task[None] | None = None

    async def store(self, messages: list[Message], timeout: float) -> Stored:
        """Store `messages` with whatever else is waiting; the answer comes after the commit
        that holds them (or with None once `timeout` passed with the database down)."""
        answer: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(messages, self.clock() + timeout, answer))
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        return await answer

    async def _run(self) -> None:
        """Write groups while callers wait; the task ends when nobody does."""
        try:
            if self.window > 0:
                await asyncio.sleep(self.window)
            while self._waiting:
                await self._commit(self._take())
        finally:
            self._task = None
            while self._waiting:  # cancelled (the server stops): nobody waits forever
                _settle(self._waiting.popleft(), RuntimeError("the API is stopping"))

    def _take(self) -> list[_Waiting]:
        group = [self._waiting.popleft()]
        size = len(group[0].messages)
        while self._waiting and size + len(self._waiting[0].messages) <= self.limit:
            size += len(self._waiting[0].messages)
            group.append(self._waiting.popleft())
        return group

    async def _commit(self, group: list[_Waiting]) -> None:
        stop = asyncio.Event()
        wait = max(0.0, min(w.deadline for w in group) - self.clock())
        timer = asyncio.get_running_loop().call_later(wait, stop.set)
        try:
            await self.worker.refresh_registry()
            if len(group) == 1 or not await self._together(group, stop):
                await self._one_by_one(group, stop)
        except Exception as exc:
            for waiting in group:
                _settle(waiting, exc)
        except BaseException:
            for waiting in group:
                _settle(waiting, RuntimeError("the API is stopping"))
            raise
        finally:
            timer.cancel()

    async def _together(self, group: list[_Waiting], stop: asyncio.Event) -> bool:
        """The group in one transaction, each caller answered; False if it must go one by one."""
        self.groups += 1
        batches = [self.worker.sort(w.messages) for w in group]
        readings = [r for b in batches for r in b.readings]
        dead = [d for b in batches for d in b.dead]
        try:
            result = await self.worker.store_new(readings, dead, stop)
        except (KeysTaken, StorageRefused) as exc:
            log.debug("a group of %d requests is written one by one: %s", len(group), exc)
            return False
        except Exception as exc:  # whose it is shows when each is written alone
            log.warning("a group of %d requests failed (%s); one by one now", len(group), exc)
            return False
        for waiting, batch in zip(group, batches, strict=True):
            mine = None if result is None else BatchResult(len(batch.readings), 0, len(batch.dead))
            _settle(waiting, Stored(batch, mine))
        return True

    async def _one_by_one(self, group: list[_Waiting], stop: asyncio.Event) -> None:
        for waiting in group:
            try:
                batch, result = await self.worker.store_messages(waiting.messages, stop)
            except Exception as exc:
                _settle(waiting, exc)
            else:
                _settle(waiting, Stored(batch, result))


def _settle(waiting: _Waiting, outcome: Stored | BaseException) -> None:
    """Answer a caller, unless it has gone (its request was cancelled) or was answered."""
    if waiting.answer.done():
        return
    if isinstance(outcome, BaseException):
        waiting.answer.set_exception(outcome)
    else:
        waiting.answer.set_result(outcome)
