"""sentinel-nab is sentinel with other constants; per-feature weights move each feature's line."""

from __future__ import annotations

import pickle

import pytest
from synthetic import make_stream

from weatherpipe.detect import create_detector
from weatherpipe.detect.sentinel import SentinelDetector, SentinelNabDetector


@pytest.fixture(scope="module")
def stream() -> tuple[list[float], list[float]]:
    s = make_stream(11, hours=2.0)
    return s.ts.tolist(), s.values.tolist()


def test_sentinel_nab_is_registered_by_name() -> None:
    detector = create_detector("sentinel-nab")
    assert isinstance(detector, SentinelNabDetector)
    assert detector.name == "sentinel-nab"


def test_unit_weights_leave_sentinel_unchanged(stream: tuple[list[float], list[float]]) -> None:
    ts, values = stream
    weighted = SentinelDetector(weights=(1.0,) * 6).process_many(ts, values)
    assert weighted == SentinelDetector().process_many(ts, values)


def test_weights_out_of_reach_silence_every_feature(
    stream: tuple[list[float], list[float]],
) -> None:
    ts, values = stream
    verdicts = SentinelDetector(weights=(1e9,) * 6).process_many(ts, values)
    assert not any(v.is_anomaly for v in verdicts)
    assert max(v.score for v in verdicts) < 1e-6


def test_sentinel_nab_flags_a_level_shift_once() -> None:
    ts = [300.0 * k for k in range(3_000)]
    values = [20.0 + (k % 7) * 0.01 for k in range(2_000)] + [24.0] * 1_000
    verdicts = create_detector("sentinel-nab").process_many(ts, values)
    onsets = [k for k, v in enumerate(verdicts) if v.is_anomaly and k >= 2_000]
    assert onsets[:1] == [2_000]
    assert len(onsets) <= 3


def test_sentinel_nab_resumes_from_a_pickle_mid_stream(
    stream: tuple[list[float], list[float]],
) -> None:
    ts, values = stream
    straight = create_detector("sentinel-nab").process_many(ts, values)
    first = create_detector("sentinel-nab")
    head = first.process_many(ts[:1_234], values[:1_234])
    tail = pickle.loads(pickle.dumps(first)).process_many(ts[1_234:], values[1_234:])
    assert head + tail == straight
