"""The detection job: feeds each device's new readings to its detector and flags the database."""

from __future__ import annotations

import asyncio
import logging
import pickle
from dataclasses import dataclass
from datetime import datetime

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


class DetectionJob:
    """Scores readings in time order per device; state and flags commit together, so a
    restart resumes exactly where the last committed pass stopped."""

    def __init__(self, repo: Repository, detector: str = "default", batch: int = 20_000) -> None:
        self.repo = repo
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
        for device_id in self.repo.device_ids():
            if stop is not None and stop.is_set():
                break
            cursor = self._cursors.get(device_id)
            if cursor is None:
                cursor = self._cursors[device_id] = _Cursor(
                    create_detector(self.detector_name), None
                )
            scored += self._advance(device_id, cursor, stop)
        self.stats.passes += 1
        return scored

    def _advance(self, device_id: str, cursor: _Cursor, stop: asyncio.Event | None = None) -> int:
        total = 0
        while stop is None or not stop.is_set():
            rows = self.repo.readings_after(device_id, cursor.last_ts, self.batch)
            if not rows:
                return total
            before = pickle.dumps(cursor.detector)
            verdicts = cursor.detector.process_many(
                [ts.timestamp() for _, ts, _ in rows], [t for _, _, t in rows]
            )
            results = [
                Scored(rid, v.score, v.is_anomaly)
                for (rid, _, _), v in zip(rows, verdicts, strict=True)
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
            if len(rows) < self.batch:
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
