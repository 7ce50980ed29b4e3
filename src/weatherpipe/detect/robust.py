"""A first default detector: a robust z-score against an exponentially weighted baseline."""

from __future__ import annotations

import math
from typing import Any, Self

from weatherpipe.detect.base import DEFAULT_FALSE_ALARMS_PER_DAY, Detector, Verdict


class RobustZDetector(Detector):
    """Flags a reading whose deviation from a slow EWMA is many robust deviations away.

    Its line is a fixed z (`threshold`); `false_alarms_per_day` is accepted for the shared
    contract but not calibrated.
    """

    name = "robust-z"

    _FIELDS = ("alpha", "threshold", "warmup", "mean", "dev", "seen", "alarm")

    def __init__(
        self,
        alpha: float = 0.02,
        threshold: float = 6.0,
        warmup: int = 30,
        false_alarms_per_day: float = DEFAULT_FALSE_ALARMS_PER_DAY,
    ) -> None:
        self.false_alarms_per_day = false_alarms_per_day
        self.alpha = alpha
        self.threshold = threshold
        self.warmup = warmup
        self.mean = 0.0
        self.dev = 0.0
        self.seen = 0
        self.alarm = False

    def score_one(self, ts: float, value: float) -> float:
        if self.seen < self.warmup:
            return 0.0
        z = abs(value - self.mean) / max(self.dev, 1e-6)
        return 1.0 - math.exp(-z / self.threshold)

    def learn_one(self, ts: float, value: float) -> None:
        if self.seen == 0:
            self.mean = value
        deviation = abs(value - self.mean)
        self.mean += self.alpha * (value - self.mean)
        self.dev += self.alpha * (deviation - self.dev)
        self.seen += 1

    def process_one(self, ts: float, value: float) -> Verdict:
        score = self.score_one(ts, value)
        above = score >= 1.0 - math.exp(-1.0)
        onset = above and not self.alarm
        self.alarm = above
        kind = "spike" if value >= self.mean else "dip"
        self.learn_one(ts, value)
        return Verdict(score, True, kind, "low") if onset else Verdict(score, False)

    @property
    def warming_up(self) -> bool:
        return self.seen < self.warmup

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {f: getattr(self, f) for f in self._FIELDS}
        return {"detector": self.name, "version": self.state_version, **state}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        cls.check_version(state)
        detector = cls(state["alpha"], state["threshold"], state["warmup"])
        for f in ("mean", "dev"):
            setattr(detector, f, float(state[f]))
        detector.seen = int(state["seen"])
        detector.alarm = bool(state["alarm"])
        return detector
