"""vigil's per-device exceedance-rate calibration (detect/budget.py): on a heavy-tailed, fault-free
stream the onsets per device-day follow the setting (and fall with it), whatever the sampling
rate; without the calibration the same stream raises far more; state keeps the raised lines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from weatherpipe.detect import budget
from weatherpipe.detect.vigil import VigilDetector

START = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def heavy_tailed(days: float, seconds_per_reading: float, seed: int, df: float):
    """Fault-free readings: a slow random walk under Student-t noise (df degrees), to 0.01 C."""
    n = int(days * 86_400 / seconds_per_reading)
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(0.0, 0.005 * np.sqrt(seconds_per_reading), n))
    values = 12.0 + walk + 0.1 * rng.standard_t(df, n)
    ts = START + seconds_per_reading * np.arange(n, dtype=float)
    return ts.tolist(), np.round(values, 2).tolist()


def onsets(ts: list[float], values: list[float], false_alarms_per_day: float) -> int:
    verdicts = VigilDetector(false_alarms_per_day).process_many(ts, values)
    return sum(v.is_anomaly for v in verdicts)


def test_an_onset_raises_its_line_and_device_time_lowers_it_at_the_budgets_pace() -> None:
    offsets = budget.raised(budget.fresh(), 1)
    assert offsets == [0.0, budget.STEP, 0.0, 0.0, 0.0]
    # At 0.5 a day shared by five tests, one onset of a test is allowed every 10 days.
    assert budget.lowered(offsets, 5 * 86_400.0, 0.5)[1] == pytest.approx(budget.STEP / 2)
    assert budget.lowered(offsets, 30 * 86_400.0, 0.5) == budget.fresh()  # never below 0
    many = budget.fresh()
    for _ in range(100):
        many = budget.raised(many, 0)
    assert many[0] == budget.CAP


def test_onsets_come_at_the_budgets_rate_in_equilibrium() -> None:
    # An onset whenever the offset falls to 0 (a line that is never high enough): the tracker
    # settles at one onset per STEP of lowering, i.e. at the test's share of the setting.
    offsets, fired, hour = budget.fresh(), 0, 3_600.0
    for _ in range(24 * 400):  # 400 days in hours
        offsets = budget.lowered(offsets, hour, 0.5)
        if offsets[0] <= 0.0:
            offsets, fired = budget.raised(offsets, 0), fired + 1
    assert fired / 400 == pytest.approx(0.5 / budget.TESTS, rel=0.05)


@pytest.mark.parametrize("seed", range(3))
def test_a_five_minute_heavy_tailed_stream_keeps_near_the_setting_and_follows_it(
    seed: int,
) -> None:
    # 288 readings a day for 60 days (a NAB-like server stream), Student-t noise with 2 degrees.
    ts, values = heavy_tailed(60, 300.0, seed, 2.0)
    default, fewer = onsets(ts, values, 0.5) / 60, onsets(ts, values, 0.05) / 60
    assert default <= 3 * 0.5, default
    assert fewer <= default
    assert fewer <= 3 * 0.05 + 2 / 60, fewer  # at most two onsets over the budget


def test_a_heavy_tailed_1_hz_stream_raises_far_fewer_onsets_than_without_the_calibration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ts, values = heavy_tailed(2, 1.0, 1, 2.0)
    calibrated = onsets(ts, values, 0.5)
    monkeypatch.setattr(budget, "STEP", 0.0)  # the lines as they were: extrapolated only
    uncalibrated = onsets(ts, values, 0.5)
    assert calibrated * 2 <= uncalibrated, (calibrated, uncalibrated)


def test_raised_lines_survive_a_restart_exactly_and_old_state_is_refused() -> None:
    ts, values = heavy_tailed(1, 1.0, 2, 2.0)
    first = VigilDetector()
    first.process_many(ts[:40_000], values[:40_000])
    assert max(first.offsets) > 0.0  # the calibration has raised something to carry over
    state = json.loads(json.dumps(first.to_state(), allow_nan=False))
    resumed = VigilDetector.from_state(state)
    assert resumed.offsets == first.offsets and resumed.cal_ts == first.cal_ts
    assert resumed.process_many(ts[40_000:], values[40_000:]) == first.process_many(
        ts[40_000:], values[40_000:]
    )
    with pytest.raises(ValueError, match="version"):
        VigilDetector.from_state({**state, "version": 1})
