"""The original design kept as a baseline: 2-means clustering of each one-minute window.

What it does, exactly:

1. Readings are grouped by the UTC minute they fall in (``floor(ts / 60)``); a reading from a new
   minute starts a new window and the old one is forgotten.
2. Each reading is scored when it arrives, on the window as it stands then (the readings of its
   minute up to and including it): the window closes, for that reading, at the reading. Nothing
   after the reading is used, so the detector is causal.
3. With at least ``min_points`` readings in the window, 1-D K-means with k = 2 (our own NumPy
   Lloyd iterations, centres started at the window's minimum and maximum) splits the values.
4. The smaller cluster is anomalous when it holds at most ``small_share`` of the window and its
   centre is more than ``far`` spreads (mean absolute deviation of the larger cluster, floored) from
   the larger cluster's centre. A reading in an anomalous cluster is flagged, as the original
   flagged every point of the small, far cluster; it is a point flag, not an event onset.
5. The score is the reading's distance from the larger cluster's centre in spreads, divided by
   ``2 * far`` and clipped to [0, 1] (0.5 at the flag line).

On series slower than one reading a minute (NAB's 5-minute and hourly files) every window holds
one reading, so it never flags: this is the blind spot the default detector was built to remove.
"""

from __future__ import annotations

import math
from typing import Any, Self

import numpy as np

from weatherpipe.detect.base import (
    DEFAULT_FALSE_ALARMS_PER_DAY,
    Detector,
    Verdict,
    decode_float,
    encode_float,
)

WINDOW_SECONDS = 60.0


def two_means(values: np.ndarray, iterations: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's K-means with k = 2 on 1-D values: (labels 0/1, the two centres)."""
    centres = np.array([values.min(), values.max()], dtype=float)
    labels = np.zeros(len(values), dtype=np.int64)
    for _ in range(iterations):
        new = (np.abs(values - centres[1]) < np.abs(values - centres[0])).astype(np.int64)
        for k in (0, 1):
            members = values[new == k]
            if len(members):
                centres[k] = members.mean()
        if np.array_equal(new, labels):
            break
        labels = new
    return labels, centres


class KMeansMinuteDetector(Detector):
    """Flags readings that K-means puts in a small, far cluster of their one-minute window.

    Point flags of kind "spike" or "dip" (which side of the big cluster) with severity "low";
    `false_alarms_per_day` is accepted for the shared contract but not calibrated.
    """

    name = "kmeans-minute"

    def __init__(
        self,
        min_points: int = 5,
        small_share: float = 0.2,
        far: float = 3.0,
        false_alarms_per_day: float = DEFAULT_FALSE_ALARMS_PER_DAY,
    ) -> None:
        self.false_alarms_per_day = false_alarms_per_day
        self.min_points = min_points
        self.small_share = small_share
        self.far = far
        self.minute = -math.inf
        self.window: list[float] = []

    def score_one(self, ts: float, value: float) -> float:
        return self._judge(self._window_with(ts, value))[0]

    def learn_one(self, ts: float, value: float) -> None:
        self.window = self._window_with(ts, value)
        self.minute = math.floor(ts / WINDOW_SECONDS)

    def process_one(self, ts: float, value: float) -> Verdict:
        self.learn_one(ts, value)
        score, flagged = self._judge(self.window)
        if not flagged:
            return Verdict(score, False)
        kind = "spike" if value >= float(np.median(self.window)) else "dip"
        return Verdict(score, True, kind, "low")

    @property
    def warming_up(self) -> bool:
        return False  # it judges each minute on its own: nothing to learn first

    def to_state(self) -> dict[str, Any]:
        return {
            "detector": self.name,
            "version": self.state_version,
            "params": [self.min_points, self.small_share, self.far],
            "minute": encode_float(self.minute),
            "window": list(self.window),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        cls.check_version(state)
        min_points, small_share, far = state["params"]
        detector = cls(int(min_points), float(small_share), float(far))
        detector.minute = decode_float(state["minute"])
        detector.window = [float(v) for v in state["window"]]
        return detector

    def _window_with(self, ts: float, value: float) -> list[float]:
        """The reading's window so far, including it (a new minute starts a fresh window)."""
        same_minute = math.floor(ts / WINDOW_SECONDS) == self.minute
        return [*self.window, value] if same_minute else [value]

    def _judge(self, window: list[float]) -> tuple[float, bool]:
        """Score and flag of the window's last reading."""
        if len(window) < self.min_points:
            return 0.0, False
        values = np.asarray(window, dtype=float)
        labels, centres = two_means(values)
        sizes = np.bincount(labels, minlength=2)
        big = int(np.argmax(sizes))
        small = 1 - big
        members = values[labels == big]
        spread = max(float(np.mean(np.abs(members - centres[big]))), 1e-3)
        distance = abs(values[-1] - centres[big]) / spread
        score = min(1.0, distance / (2.0 * self.far))
        anomalous = (
            0 < sizes[small] <= self.small_share * len(values)
            and abs(centres[small] - centres[big]) > self.far * spread
        )
        return score, bool(anomalous and labels[-1] == small)
