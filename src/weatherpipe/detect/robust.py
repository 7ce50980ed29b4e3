"""A first default detector: a robust z-score against an exponentially weighted baseline."""

from __future__ import annotations

import math

from weatherpipe.detect.base import Detector, Verdict


class RobustZDetector(Detector):
    """Flags a reading whose deviation from a slow EWMA is many robust deviations away."""

    name = "robust-z"

    def __init__(self, alpha: float = 0.02, threshold: float = 6.0, warmup: int = 30) -> None:
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
        self.learn_one(ts, value)
        return Verdict(score, onset)
