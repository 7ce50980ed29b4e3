"""The kmeans-minute baseline does what its docstring says, and no more."""

from __future__ import annotations

import numpy as np

from weatherpipe.detect import create_detector
from weatherpipe.detect.kmeans import two_means


def test_two_means_splits_two_obvious_groups() -> None:
    labels, centres = two_means(np.array([1.0, 1.1, 0.9, 9.0, 9.2]))
    assert labels.tolist() == [0, 0, 0, 1, 1]
    assert np.allclose(centres, [1.0, 9.1])


def test_flags_the_small_far_cluster_inside_a_minute() -> None:
    detector = create_detector("kmeans-minute")
    start = 1_700_000_040.0  # a minute boundary
    values = [20.0 + 0.01 * (i % 3) for i in range(30)]
    values[20] = 30.0
    verdicts = detector.process_many([start + i for i in range(30)], values)
    assert [i for i, v in enumerate(verdicts) if v.is_anomaly] == [20]
    assert verdicts[20].score == 1.0


def test_a_new_minute_starts_a_fresh_window() -> None:
    detector = create_detector("kmeans-minute")
    start = 1_700_000_040.0
    ts = [start + i for i in range(120)]
    values = [20.0] * 60 + [30.0] * 60  # a step exactly at the minute boundary
    assert not any(v.is_anomaly for v in detector.process_many(ts, values))


def test_never_flags_series_slower_than_a_reading_a_minute() -> None:
    detector = create_detector("kmeans-minute")
    ts = [1_700_000_000.0 + 300 * i for i in range(200)]
    values = [20.0 if i != 150 else 90.0 for i in range(200)]
    assert not any(v.is_anomaly for v in detector.process_many(ts, values))
