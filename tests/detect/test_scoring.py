"""NAB scoring and event metrics on small cases worked by hand."""

from __future__ import annotations

import math

import pytest

from weatherpipe.detect.scoring import (
    PROFILES,
    EventCounts,
    event_counts,
    normalised,
    probation_rows,
    score_file,
    sigmoid,
    window_rows,
)

STANDARD = PROFILES["standard"]
LOW_FP = PROFILES["reward_low_FP_rate"]
LOW_FN = PROFILES["reward_low_FN_rate"]

# A(-1) = 2 / (1 + e^-5) - 1 = 0.986614; the window credit divides by it.
A_MINUS_1 = 2 / (1 + math.exp(-5)) - 1


def test_sigmoid_is_zero_at_the_end_one_before_minus_one_after_three_widths() -> None:
    assert sigmoid(0.0) == 0.0
    assert sigmoid(-1.0) == pytest.approx(0.986614, abs=1e-6)
    assert sigmoid(3.0) == pytest.approx(2 / (1 + math.exp(15)) - 1)
    assert sigmoid(3.01) == -1.0


def test_probation_is_fifteen_percent_capped_at_750_rows() -> None:
    assert probation_rows(100) == 15
    assert probation_rows(4032) == 604
    assert probation_rows(22695) == 750


def test_window_rows_map_timestamps_to_first_and_last_rows_inside() -> None:
    ts = [0.0, 10.0, 20.0, 30.0, 40.0]
    assert window_rows(ts, [(10.0, 30.0)]) == [(1, 3)]
    assert window_rows(ts, [(5.0, 35.0)]) == [(1, 3)]
    assert window_rows(ts, [(41.0, 50.0)]) == []


def test_detection_at_window_start_earns_full_credit() -> None:
    # 100 rows, probation 15, window rows 40..49 (width 10): y = -(49 - 40 + 1) / 10 = -1.
    assert score_file([40], 100, [(40, 49)], STANDARD).raw == pytest.approx(1.0)


def test_detection_at_window_end_earns_little() -> None:
    # y = -(49 - 49 + 1) / 10 = -0.1; A(-0.1) = 2 / (1 + e^-0.5) - 1 = 0.244919.
    expected = (2 / (1 + math.exp(-0.5)) - 1) / A_MINUS_1
    assert expected == pytest.approx(0.248242, abs=1e-6)
    assert score_file([49], 100, [(40, 49)], STANDARD).raw == pytest.approx(expected)


def test_only_the_earliest_detection_in_a_window_counts() -> None:
    once = score_file([45], 100, [(40, 49)], STANDARD)
    twice = score_file([45, 46, 49], 100, [(40, 49)], STANDARD)
    assert twice.raw == pytest.approx(once.raw)
    assert twice.false_positives == 0


def test_missed_window_costs_a_fn_weight() -> None:
    assert score_file([], 100, [(40, 49)], STANDARD).raw == -1.0
    assert score_file([], 100, [(40, 49)], LOW_FN).raw == -2.0


def test_false_positive_before_any_window_ended_costs_full_weight() -> None:
    assert score_file([20], 100, [], STANDARD).raw == pytest.approx(-0.11)
    assert score_file([20], 100, [(40, 49)], LOW_FP).raw == pytest.approx(-0.22 - 1.0)


def test_false_positive_right_after_a_window_is_cheap() -> None:
    # Last window ended at row 49 (width 10): A((50 - 49) / 9) = 2 / (1 + e^(5/9)) - 1 = -0.270838.
    expected = 0.11 * (2 / (1 + math.exp(5 / 9)) - 1)
    assert expected == pytest.approx(-0.029793, abs=1e-6)
    result = score_file([40, 50], 100, [(40, 49)], STANDARD)
    assert result.raw == pytest.approx(1.0 + expected)
    assert result.false_positives == 1


def test_false_positive_three_widths_after_a_window_costs_full_weight() -> None:
    # (90 - 49) / 9 = 4.6 > 3, so A = -1.
    assert score_file([40, 90], 100, [(40, 49)], STANDARD).raw == pytest.approx(1.0 - 0.11)


def test_probation_rows_earn_and_cost_nothing() -> None:
    # A window ending in probation (rows 5..12 < 15) is not scored and a detection at 10 is
    # ignored; a detection at 15 is an FP eased by that window: A((15 - 12) / 7) = -0.789999.
    expected = 0.11 * (2 / (1 + math.exp(15 / 7)) - 1)
    assert expected == pytest.approx(-0.086900, abs=1e-6)
    result = score_file([10, 15], 100, [(5, 12)], STANDARD)
    assert result.windows == 0
    assert result.raw == pytest.approx(expected)


def test_normalised_score_maps_null_to_zero_and_perfect_to_hundred() -> None:
    assert normalised(-1.0, 1, STANDARD) == 0.0
    assert normalised(1.0, 1, STANDARD) == 100.0
    # One window caught at its start plus one full-cost FP: (0.89 + 1) / 2 = 94.5.
    assert normalised(1.0 - 0.11, 1, STANDARD) == pytest.approx(94.5)
    assert normalised(-2.0, 1, LOW_FN) == 0.0


def test_event_counts_one_tp_per_window_and_fp_per_outside_onset() -> None:
    counts = event_counts([(10.0, 20.0), (30.0, 40.0)], [12.0, 15.0, 35.0, 50.0])
    assert counts == EventCounts(true_positives=2, false_negatives=0, false_positives=1)
    assert counts.precision == pytest.approx(2 / 3)
    assert counts.recall == 1.0
    assert counts.f1 == pytest.approx(0.8)


def test_event_counts_missed_window_and_empty_cases() -> None:
    counts = event_counts([(10.0, 20.0), (30.0, 40.0)], [11.0])
    assert counts == EventCounts(1, 1, 0)
    assert counts.f1 == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert event_counts([], []).f1 == 1.0
    assert event_counts([], [5.0]) == EventCounts(0, 0, 1)


def test_minute_events_count_distinct_minutes_outside_windows_and_normal_time() -> None:
    from weatherpipe.detect.scoring import Labelled, minute_events

    windows = [Labelled(600.0, 700.0, "spike"), Labelled(1_000.0, 1_300.0, "shift")]
    # Two onsets in one clock minute outside windows are one false alarm; 61 s apart are two.
    onsets = [650.0, 120.0, 130.0, 1_500.0, 1_561.0]
    e = minute_events(windows, onsets, 0.0, 3_600.0)
    assert e.caught == {"spike": 1, "shift": 0}
    assert e.total == {"spike": 1, "shift": 1}
    assert e.false_alarms == 3
    assert e.normal_seconds == 3_600.0 - 100.0 - 300.0
    assert e.counts.recall == 0.5
    assert e.false_alarms_per_day == 3 / ((3_600.0 - 400.0) / 86_400.0)
