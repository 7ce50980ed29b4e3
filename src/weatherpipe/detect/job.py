"""The detection job: feeds each device's new readings to its detector and flags the database."""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from weatherpipe.detect import create_detector
from weatherpipe.detect.base import Detector
from weatherpipe.errors import StorageUnavailable
from weatherpipe.lifecycle import pause
from weatherpipe.storage.repository import Repository, Scored

log = logging.getLogger(__name__)


@dataclass
class _Cursor:
    detector: Detector
    last_ts: datetime | None


@dataclass
class DetectStats:
    scored: int = 0
    flagged: int = 0
    passes: int = 0


Row = tuple[int, datetime, float, datetime]
# How long a stored reading waits for older ones still in other ingest processes' hands.
SETTLE_SECONDS = 1.0


def settled(rows: list[Row], now: datetime, settle_seconds: float) -> list[Row]:
    """The oldest readings that no reading still in flight can come before.

    Several ingest processes commit batches out of order, so a reading a little older than the
    newest stored one may still be on its way; scoring past it would leave it unscored for good.
    A reading is settled once it was stored `settle_seconds` ago, or once a stored reading is
    `settle_seconds` newer (in sensor time) than it.
    """
    if not rows:
        return rows
    horizon = rows[-1][1] - timedelta(seconds=settle_seconds)
    fresh = now - timedelta(seconds=settle_seconds)
    for k, (_, ts, _, received_at) in enumerate(rows):
        if ts > horizon and received_at > fresh:
            return rows[:k]
    return rows


class DetectionJob:
    """Scores readings in time order per device; state and flags commit together, so a
    restart resumes exactly where the last committed pass stopped."""

    def __init__(
        self,
        repo: Repository,
        detector: str = "default",
        batch: int = 20_000,
        settle_seconds: float = SETTLE_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.repo = repo
        self.settle_seconds = settle_seconds
        self.clock = clock
        self.detector_name = detector
        self.batch = batch
        self.stats = DetectStats()
        self._cursors: dict[str, _Cursor] | None = None
        create_detector(detector)  # fail fast on an unknown name

    def _load(self) -> dict[str, _Cursor]:
        cursors = {}
        for device_id, (last_ts, state) in self.repo.detector_states(self.detector_name).items():
            cursors[device_id] = _Cursor(pickle.loads(state), last_ts)
        log.info("detector %s resumes %d devices", self.detector_name, len(cursors))
        return cursors

    def run_once(self, stop: asyncio.Event | None = None) -> int:
        """One pass over every device; returns how many readings were scored.

        A set `stop` ends the pass after the batch in hand (each batch commits with its state,
        so the next pass resumes right there); a long backlog then cannot hold up a SIGTERM.
        """
        if self._cursors is None:
            self._cursors = self._load()
        scored = 0
        for device_id, last_seen in self.repo.devices_last_seen().items():
            if stop is not None and stop.is_set():
                break
            cursor = self._cursors.get(device_id)
            if cursor is None:
                cursor = self._cursors[device_id] = _Cursor(
                    create_detector(self.detector_name), None
                )
            if cursor.last_ts is not None and cursor.last_ts >= last_seen:
                continue  # nothing newer than what this device's detector has seen
            scored += self._advance(device_id, cursor, stop)
        self.stats.passes += 1
        return scored

    def _advance(self, device_id: str, cursor: _Cursor, stop: asyncio.Event | None = None) -> int:
        total = 0
        while stop is None or not stop.is_set():
            fetched = self.repo.readings_after(device_id, cursor.last_ts, self.batch)
            rows = settled(fetched, self.clock(), self.settle_seconds)
            if not rows:
                return total
            before = pickle.dumps(cursor.detector)
            verdicts = cursor.detector.process_many(
                [row[1].timestamp() for row in rows], [row[2] for row in rows]
            )
            results = [
                Scored(rid, v.score, v.is_anomaly)
                for (rid, *_), v in zip(rows, verdicts, strict=True)
            ]
            try:
                self.repo.save_detection(
                    self.detector_name,
                    device_id,
                    rows[-1][1],
                    pickle.dumps(cursor.detector),
                    results,
                )
            except Exception:
                cursor.detector = pickle.loads(before)  # the pass did not commit: undo it
                raise
            cursor.last_ts = rows[-1][1]
            flagged = sum(r.is_anomaly for r in results)
            self.stats.scored += len(rows)
            self.stats.flagged += flagged
            total += len(rows)
            if len(rows) < self.batch:  # caught up, or the newest readings are not settled
                return total
        return total

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> DetectStats:
        """Pass after pass until `stop`; waits out database outages."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.run_once, stop)
            except StorageUnavailable as exc:
                log.warning("database unavailable (%s); detection waits", exc)
            await pause(interval, stop)
        return self.stats
