"""Every registered detector is causal, batch-equal, picklable; the default catches six faults."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from synthetic import KINDS as FAULTS
from synthetic import make_stream

from weatherpipe.detect import DETECTORS, create_detector
from weatherpipe.detect.base import KINDS, SEVERITIES, Verdict
from weatherpipe.errors import ConfigError

SEEDS = range(10)


@pytest.fixture(scope="module")
def stream() -> tuple[list[float], list[float]]:
    """Two hours of 1 Hz readings with every fault kind in them."""
    s = make_stream(7, hours=2.0)
    return s.ts.tolist(), s.values.tolist()


def onsets(name: str, ts: list[float], values: list[float]) -> list[float]:
    verdicts = create_detector(name).process_many(ts, values)
    return [t for t, v in zip(ts, verdicts, strict=True) if v.is_anomaly]


def test_default_is_vigil_and_unknown_names_fail_clearly() -> None:
    assert type(create_detector("default")) is type(create_detector("vigil"))
    with pytest.raises(ConfigError, match="unknown detector"):
        create_detector("nope")


@pytest.mark.parametrize("kind", FAULTS)
def test_default_catches_each_fault_kind_on_held_out_streams(kind: str) -> None:
    caught = 0
    for seed in SEEDS:
        s = make_stream(500 + seed, hours=1.5, kinds=(kind,))
        _, start, end = s.windows[0]
        alarms = onsets("default", s.ts.tolist(), s.values.tolist())
        caught += any(start <= t <= end for t in alarms)
    assert caught >= 8, f"{kind}: caught {caught} of {len(SEEDS)}"


def test_default_catches_most_faults_outdoors_too() -> None:
    # A second physics (sun, clouds, turbulence) the detector was never tuned on.
    caught = total = 0
    for seed in range(3):
        s = make_stream(700 + seed, hours=3.0, physics="outdoor")
        alarms = onsets("default", s.ts.tolist(), s.values.tolist())
        caught += sum(any(a <= t <= b for t in alarms) for _, a, b in s.windows)
        total += len(s.windows)
    assert caught >= 0.8 * total


def test_default_stays_quiet_on_clean_streams() -> None:
    # Thirty hours of fault-free readings: at most one false alarm per ten hours.
    alarms = sum(
        len(onsets("default", s.ts.tolist(), s.values.tolist()))
        for s in (make_stream(900 + seed, hours=3.0, kinds=()) for seed in SEEDS)
    )
    assert alarms <= 3


def test_default_flags_onsets_not_held_states() -> None:
    ts = [float(t) for t in range(3_000)]
    values = [20.0 + 0.05 * np.sin(t / 7.0) for t in range(2_000)] + [25.0] * 1_000
    flagged = [t for t in onsets("default", ts, values) if t >= 2_000]
    assert flagged and flagged[0] == 2_000.0
    assert len(flagged) <= 3


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_scores_are_in_unit_interval(name: str, stream: tuple[list[float], list[float]]) -> None:
    verdicts = create_detector(name).process_many(*stream)
    assert all(0.0 <= v.score <= 1.0 for v in verdicts)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_appending_future_readings_does_not_change_past_verdicts(
    name: str, stream: tuple[list[float], list[float]]
) -> None:
    ts, values = stream
    cut = len(ts) // 2
    past = create_detector(name).process_many(ts[:cut], values[:cut])
    whole = create_detector(name).process_many(ts, values)
    assert whole[:cut] == past


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_process_many_equals_process_one(
    name: str, stream: tuple[list[float], list[float]]
) -> None:
    ts, values = stream
    n = 2_500
    batch = create_detector(name).process_many(ts[:n], values[:n])
    single = create_detector(name)
    assert [single.process_one(t, v) for t, v in zip(ts[:n], values[:n], strict=True)] == batch


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_pickled_detector_resumes_identically(
    name: str, stream: tuple[list[float], list[float]]
) -> None:
    ts, values = stream
    cut = 3_000
    straight = create_detector(name).process_many(ts, values)
    first = create_detector(name)
    head = first.process_many(ts[:cut], values[:cut])
    resumed: list[Verdict] = pickle.loads(pickle.dumps(first)).process_many(ts[cut:], values[cut:])
    assert head + resumed == straight


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_score_one_does_not_change_state(
    name: str, stream: tuple[list[float], list[float]]
) -> None:
    ts, values = stream
    detector = create_detector(name)
    detector.process_many(ts[:1_000], values[:1_000])
    peek = detector.score_one(ts[1_000], values[1_000])
    assert detector.process_one(ts[1_000], values[1_000]).score == peek


def test_default_accepts_numpy_arrays_and_returns_plain_values(
    stream: tuple[list[float], list[float]],
) -> None:
    ts, values = stream
    from_arrays = create_detector("default").process_many(np.array(ts), np.array(values))
    assert from_arrays == create_detector("default").process_many(ts, values)
    assert all(type(v.score) is float and type(v.is_anomaly) is bool for v in from_arrays)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_state_survives_a_json_round_trip_exactly(
    name: str, stream: tuple[list[float], list[float]]
) -> None:
    ts, values = stream
    cut = 3_001
    straight = create_detector(name).process_many(ts, values)
    first = create_detector(name)
    head = first.process_many(ts[:cut], values[:cut])
    state = json.loads(json.dumps(first.to_state(), allow_nan=False))
    assert isinstance(state["version"], int)
    resumed = type(first).from_state(state)
    assert head + resumed.process_many(ts[cut:], values[cut:]) == straight


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_state_of_an_unknown_version_is_refused(name: str) -> None:
    state = create_detector(name).to_state()
    with pytest.raises(ValueError, match="version"):
        type(create_detector(name)).from_state({**state, "version": -1})


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_onsets_carry_a_valid_kind_and_severity_and_other_rows_none(
    name: str, stream: tuple[list[float], list[float]]
) -> None:
    for v in create_detector(name).process_many(*stream):
        if v.is_anomaly:
            assert v.kind in KINDS and v.severity in SEVERITIES
        elif not v.is_anomaly:
            assert v.kind == "" and v.severity == ""


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_every_detector_takes_the_sensitivity_and_says_when_it_warms_up(name: str) -> None:
    detector = create_detector(name, false_alarms_per_day=2.0)
    assert isinstance(detector.warming_up, bool)
