"""Anomaly detectors, chosen by name, and the job that flags the database."""

from __future__ import annotations

from collections.abc import Callable

from weatherpipe.detect.base import Detector, Verdict
from weatherpipe.detect.kmeans import KMeansMinuteDetector
from weatherpipe.detect.robust import RobustZDetector
from weatherpipe.detect.sentinel import SentinelDetector, SentinelNabDetector
from weatherpipe.errors import ConfigError

DETECTORS: dict[str, Callable[[], Detector]] = {
    "default": SentinelDetector,
    "sentinel": SentinelDetector,
    "sentinel-nab": SentinelNabDetector,
    "kmeans-minute": KMeansMinuteDetector,
    "robust-z": RobustZDetector,
}


def create_detector(name: str) -> Detector:
    """A fresh detector by name (one parameter set for every device)."""
    try:
        return DETECTORS[name]()
    except KeyError:
        raise ConfigError(
            f"WEATHERPIPE_DETECTOR: unknown detector {name!r} (known: {', '.join(DETECTORS)})"
        ) from None


__all__ = ["DETECTORS", "Detector", "Verdict", "create_detector"]
