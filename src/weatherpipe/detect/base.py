"""The detector interface: pure, causal, one device's stream at a time (river-shaped)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, NamedTuple


class Verdict(NamedTuple):
    """A reading's anomaly score in [0, 1] and whether it starts an alarm (an event onset).

    A named tuple rather than a frozen dataclass: equally immutable, and about seven times
    cheaper to build, which matters at 100,000+ readings a second.
    """

    score: float
    is_anomaly: bool


class Detector(ABC):
    """Scores one device's readings in time order, using only each reading and earlier ones.

    `score_one` must not change state; `learn_one` folds the reading in. `process_one` is the
    usual loop step (score, then learn, then decide the flag). Detectors hold plain Python or
    NumPy state so the detection job can pickle them and resume after a restart.
    """

    name: ClassVar[str]

    @abstractmethod
    def score_one(self, ts: float, value: float) -> float:
        """Anomaly score in [0, 1] of `value` at `ts` (epoch seconds), before learning it."""

    @abstractmethod
    def learn_one(self, ts: float, value: float) -> None:
        """Fold the reading into the detector's state."""

    @abstractmethod
    def process_one(self, ts: float, value: float) -> Verdict:
        """Score the reading, learn it, and say whether it starts an alarm."""

    def process_many(self, ts: Sequence[float], values: Sequence[float]) -> list[Verdict]:
        """The same as calling `process_one` on each reading in order (may be vectorised)."""
        return [self.process_one(t, v) for t, v in zip(ts, values, strict=True)]
