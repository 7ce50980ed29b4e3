"""Anomaly detectors, chosen by name, and the job that flags the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from weatherpipe.detect.base import Detector, Verdict
from weatherpipe.detect.kmeans import KMeansMinuteDetector
from weatherpipe.detect.robust import RobustZDetector
from weatherpipe.detect.vigil import VigilDetector
from weatherpipe.errors import ConfigError

DETECTORS: dict[str, Callable[..., Detector]] = {
    "default": VigilDetector,
    "vigil": VigilDetector,
    "kmeans-minute": KMeansMinuteDetector,
    "robust-z": RobustZDetector,
}


def create_detector(name: str, false_alarms_per_day: float | None = None) -> Detector:
    """A fresh detector by name (one parameter set for every device); `false_alarms_per_day`
    is the sensitivity (None: the detector's default)."""
    try:
        factory = DETECTORS[name]
    except KeyError:
        raise ConfigError(
            f"WEATHERPIPE_DETECTOR: unknown detector {name!r} (known: {', '.join(DETECTORS)})"
        ) from None
    if false_alarms_per_day is None:
        return factory()
    return factory(false_alarms_per_day=false_alarms_per_day)


def detector_from_state(name: str, state: dict[str, Any]) -> Detector:
    """The detector `state` (from `to_state`) describes; ValueError when it cannot be read."""
    detector = create_detector(name)
    return type(detector).from_state(state)


__all__ = ["DETECTORS", "Detector", "Verdict", "create_detector", "detector_from_state"]
