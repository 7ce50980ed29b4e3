"""The detection job: feeds each device's new readings to its detector and flags the database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from weatherpipe.detect import create_detector, detector_from_state
from weatherpipe.detect.base import Detector
from weatherpipe.detect.state import dump, restore
from weatherpipe.errors import StorageUnavailable
from weatherpipe.lifecycle import pause
from weatherpipe.storage.detection import DetectionStorage
from weatherpipe.storage.rows import Detection, Row, Scored

log = logging.getLogger(__name__)


@dataclass
class _Cursor:
    detector: Detector
    last_ts: datetime | None
    sensitivity: float | None  # false alarms a day it was built with (None: its default)
    state: str | None = None  # the detector as last committed (None: start afresh)
    reset: bool = False  # started afresh since the last commit: save it even with no readings

    def rewind(self, detector_name: str) -> None:
        """Back to the last committed detector, after a save that did not commit."""
        if self.state is None:
            self.detector = create_detector(detector_name, self.sensitivity)
        else:  # state this job wrote: it loads, or that is a bug worth a crash
            self.detector = detector_from_state(detector_name, orjson.loads(self.state))


@dataclass
class DetectStats:
    scored: int = 0
    flagged: int = 0
    passes: int = 0


# How long a stored reading waits for older ones still in other ingest processes' hands.
SETTLE_SECONDS = 1.0
# Devices whose readings are read, and whose flags and states are saved, in one transaction.
DEVICES_PER_TRANSACTION = 500


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
        repo: DetectionStorage,
        detector: str = "default",
        batch: int = 20_000,
        settle_seconds: float = SETTLE_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        false_alarms_per_day: float | None = None,
    ) -> None:
        self.repo = repo
        # The sensitivity of every device without its own (None: the detector's default).
        self.false_alarms_per_day = false_alarms_per_day
        self.settle_seconds = settle_seconds
        self.clock = clock
        self.detector_name = detector
        self.batch = batch
        self.stats = DetectStats()
        self._cursors: dict[str, _Cursor] | None = None
        create_detector(detector)  # fail fast on an unknown name

    def _load(self, wanted: Callable[[str], float | None]) -> dict[str, _Cursor]:
        """Each device's committed detector; state that cannot be used starts afresh."""
        cursors = {}
        for device_id, (last_ts, stored, built) in self.repo.detector_states(
            self.detector_name
        ).items():
            detector = restore(self.detector_name, device_id, stored)
            if detector is None:  # restore said why, once
                sensitivity = wanted(device_id)
                detector = create_detector(self.detector_name, sensitivity)
                cursors[device_id] = _Cursor(detector, last_ts, sensitivity, reset=True)
            else:
                cursors[device_id] = _Cursor(detector, last_ts, built, _text(stored))
        log.info("detector %s resumes %d devices", self.detector_name, len(cursors))
        return cursors

    def _start_afresh(self, cursor: _Cursor, sensitivity: float | None) -> None:
        cursor.detector = create_detector(self.detector_name, sensitivity)
        cursor.sensitivity, cursor.state, cursor.reset = sensitivity, None, True

    def run_once(self, stop: asyncio.Event | None = None) -> int:
        """One pass over every device; returns how many readings were scored.

        Devices with readings newer than their detector's position are read and saved in
        groups, each group's flags and states in one transaction. A set `stop` ends the pass
        after the group in hand (each commits with its states, so the next pass resumes right
        there); a long backlog then cannot hold up a SIGTERM.
        """
        overrides = self.repo.sensitivity_overrides()

        def wanted(device_id: str) -> float | None:
            return overrides.get(device_id, self.false_alarms_per_day)

        if self._cursors is None:
            self._cursors = self._load(wanted)
        due = []
        for device_id, last_seen in self.repo.devices_last_seen().items():
            sensitivity = wanted(device_id)
            cursor = self._cursors.get(device_id)
            if cursor is None:
                cursor = self._cursors[device_id] = _Cursor(
                    create_detector(self.detector_name, sensitivity), None, sensitivity
                )
            elif cursor.sensitivity != sensitivity:
                log.warning(
                    "device %s: sensitivity %s -> %s false alarms a day; its %s detector "
                    "starts afresh (warming up)",
                    device_id,
                    _or_default(cursor.sensitivity),
                    _or_default(sensitivity),
                    self.detector_name,
                )
                self._start_afresh(cursor, sensitivity)
            if cursor.last_ts is None or cursor.last_ts < last_seen or cursor.reset:
                due.append(device_id)  # else nothing newer than what its detector has seen
        scored = 0
        for first in range(0, len(due), DEVICES_PER_TRANSACTION):
            if stop is not None and stop.is_set():
                break
            scored += self._advance(due[first : first + DEVICES_PER_TRANSACTION], stop)
        self.stats.passes += 1
        return scored

    def _advance(self, group: list[str], stop: asyncio.Event | None = None) -> int:
        """Score the group's new settled readings, a page of each device at a time."""
        assert self._cursors is not None
        cursors = self._cursors
        total = 0
        while group and (stop is None or not stop.is_set()):
            # Pages share `batch` readings between the devices, so a backlog stays bounded.
            limit = max(1, self.batch // len(group))
            fetched = self.repo.readings_after_many(
                {device: cursors[device].last_ts for device in group}, limit
            )
            now = self.clock()
            passes, more = [], []
            for device, page in fetched.items():
                rows = settled(page, now, self.settle_seconds)
                cursor = cursors[device]
                if not rows and not (cursor.reset and cursor.last_ts is not None):
                    continue  # (a detector started afresh is saved, so the API says so)
                verdicts = cursor.detector.process_many(
                    [row[1].timestamp() for row in rows], [row[2] for row in rows]
                )
                results = [
                    Scored(rid, v.score, v.is_anomaly, v.kind, v.severity)
                    for (rid, *_), v in zip(rows, verdicts, strict=True)
                ]
                last_ts = rows[-1][1] if rows else cursor.last_ts
                assert last_ts is not None
                passes.append(
                    Detection(
                        device,
                        last_ts,
                        dump(cursor.detector),
                        results,
                        cursor.detector.warming_up,
                        cursor.sensitivity,
                    )
                )
                if len(page) == limit:
                    # A full page: there is more, and the page's last second (held back as
                    # unsettled within the page) comes again at the head of the next one.
                    more.append(device)
            try:
                if passes:
                    self.repo.save_detections(self.detector_name, passes)
            except Exception:
                for done in passes:  # the pass did not commit: undo it
                    cursors[done.device_id].rewind(self.detector_name)
                raise
            for done in passes:
                cursors[done.device_id].last_ts = done.last_ts
                cursors[done.device_id].state = done.state
                cursors[done.device_id].reset = False
                self.stats.scored += len(done.results)
                self.stats.flagged += sum(r.is_anomaly for r in done.results)
                total += len(done.results)
            group = more
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


def _text(stored: str | bytes) -> str:
    return stored if isinstance(stored, str) else stored.decode()


def _or_default(sensitivity: float | None) -> str:
    return "the default" if sensitivity is None else f"{sensitivity:g}"
