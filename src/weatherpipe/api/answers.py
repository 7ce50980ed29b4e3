"""How the JSON endpoints answer cheaply: orjson bodies with tidy numbers, and a short-lived
cache of the fleet-wide analyses that every caller shares.

A fleet-wide analysis (devices, counts, maxima, anomalies) is the same answer for every
dashboard that asks; under load, 100 callers in the same second would run the same query 100
times. The cache keeps each answer's bytes for `ttl` seconds (WEATHERPIPE_API_CACHE_SECONDS,
default 1; 0 turns it off), and while one is being computed, other callers of the same key wait
for that computation instead of starting their own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

import anyio.to_thread
import orjson
from anyio import CapacityLimiter
from starlette.types import ASGIApp, Receive, Scope, Send

# Decimals each number is answered with: temperatures to the sensors' resolution (0.01 °C, as
# `weatherpipe query` and the dashboard show them), so a mean or a float column's binary
# noise (14.790000000000001) never reaches a client.
DECIMALS = {
    "temperature": 2,
    "max_temperature": 2,
    "last_temperature": 2,
    "t_min": 2,
    "t_max": 2,
    "t_mean": 2,
    "anomaly_score": 4,
    "latitude": 6,  # about 0.1 m
    "longitude": 6,
}
MAX_KEYS = 256
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
T = TypeVar("T")


def tidy(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Round each row's numbers to DECIMALS, in place (nested `readings` lists too)."""
    for row in rows:
        for key, value in row.items():
            if type(value) is float and key in DECIMALS:
                row[key] = round(value, DECIMALS[key])
            elif key == "readings" and isinstance(value, list):
                tidy(value)
    return rows


def json_body(data: Any) -> bytes:
    """`data` as JSON: datetimes in UTC with a Z, as the response models declare them."""
    return orjson.dumps(data, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)


class AnswerCache:
    """Answers (bytes) by key for `ttl` seconds after their computation started; one
    computation per key at a time.

    Computations block on the database, so they run in threads, at most `workers` at once:
    as many as the connection pool keeps open (5). With Starlette's 40 threads, 100 callers
    check out 15 connections and the 10 beyond the pool's size are opened and closed again
    for every request (on SQLite with three PRAGMAs each); waiting here is cheaper.
    """

    def __init__(
        self, ttl: float, workers: int = 5, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self.limiter = CapacityLimiter(max(1, workers))
        self._answers: dict[Hashable, tuple[float, bytes]] = {}
        self._pending: dict[Hashable, asyncio.Future[bytes]] = {}
        self._generation = 0  # bumped by clear(): older computations are not kept

    def clear(self) -> None:
        """Forget every answer, and every computation under way for later callers."""
        self._generation += 1
        self._answers.clear()
        self._pending.clear()

    async def run(self, work: Callable[[], T]) -> T:
        """`work` (blocking database work) in a thread, `workers` at most at once."""
        return await anyio.to_thread.run_sync(work, limiter=self.limiter)

    async def get(self, key: Hashable, compute: Callable[[], bytes]) -> bytes:
        """The answer of `key`, computed by `compute` (blocking) in a thread if need be."""
        return await self.share(key, lambda: self.run(compute))

    async def share(self, key: Hashable, produce: Callable[[], Awaitable[bytes]]) -> bytes:
        """The answer of `key`, awaited from `produce()` if need be."""
        if self.ttl <= 0:
            return await produce()
        kept = self._answers.get(key)
        if kept is not None and kept[0] > self.clock():
            return kept[1]
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._compute(key, produce))
            self._pending[key] = pending
        # Shielded: a caller that hangs up does not cancel the others' answer.
        return await asyncio.shield(pending)

    async def _compute(self, key: Hashable, produce: Callable[[], Awaitable[bytes]]) -> bytes:
        started, generation = self.clock(), self._generation
        try:
            body = await produce()
        finally:
            if generation == self._generation:
                del self._pending[key]
        if generation == self._generation:
            self._keep(key, started + self.ttl, body)
        return body

    def _keep(self, key: Hashable, expires: float, body: bytes) -> None:
        if len(self._answers) >= MAX_KEYS:
            now = self.clock()
            self._answers = {k: v for k, v in self._answers.items() if v[0] > now}
            while len(self._answers) >= MAX_KEYS:  # all fresh: the oldest goes
                del self._answers[next(iter(self._answers))]
        self._answers[key] = (expires, body)


def pool_size(repo: Any) -> int:
    """Connections the repository's pool keeps open (5 unless its engine says otherwise)."""
    size = getattr(repo.engine.pool, "size", None)
    return int(size()) if callable(size) else 5


class WritesClearAnswers:
    """ASGI middleware: once a request that may write (any method but GET, HEAD, OPTIONS)
    is answered, the cache is emptied, so whoever changes something through this API (renames
    a device, posts a reading) reads the change back at once. Writes by other processes
    (ingest, detection) show within the cache's seconds."""

    def __init__(self, app: ASGIApp, answers: AnswerCache) -> None:
        self.app = app
        self.answers = answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http" and scope["method"] not in READ_METHODS:
                self.answers.clear()
