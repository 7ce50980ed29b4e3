"""The labelled corpus: reproducible to the byte, labels that fit the data, the sizes promised."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from benchmarks.corpus import generate, sensor
from benchmarks.corpus.faults import MIN_READINGS, SPACING_S, WARM_S, Timing
from benchmarks.corpus.sets import HOLDOUT, KINDS, SETS, TUNING, TUNING2, plan_set

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")
MIN_PER_KIND = {"tuning": 15, "tuning2": 25, "holdout": 25}


@dataclass
class Series:
    text: str
    ms: np.ndarray
    values: np.ndarray


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The whole corpus through the command line, and the CPU seconds it took."""
    out = tmp_path_factory.mktemp("corpus")
    began = time.process_time()
    assert generate.main([str(out)]) == 0
    return out, time.process_time() - began


def ms(stamp: str) -> int:
    return int(np.datetime64(stamp, "ms").astype(np.int64))


def read(path: Path) -> Series:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "timestamp,value"
    stamps, values = zip(*(line.split(",") for line in lines[1:]), strict=True)
    assert all(STAMP.match(s) for s in stamps[:50] + stamps[-50:])
    return Series(
        text,
        np.array(stamps, dtype="datetime64[ms]").astype(np.int64),
        np.array(values, dtype=float),
    )


def labels(out: Path, name: str, what: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((out / "labels" / f"{name}_{what}.json").read_text())
    return loaded


@pytest.fixture(scope="module")
def streams(corpus: tuple[Path, float]) -> dict[str, Series]:
    out, _ = corpus
    return {
        f"{name}/{path.name}": read(path)
        for name in SETS
        for path in sorted((out / "data" / name).glob("*.csv"))
    }


def test_whole_corpus_generates_in_under_a_minute_of_cpu(corpus: tuple[Path, float]) -> None:
    _, cpu_seconds = corpus
    assert cpu_seconds < 60.0


def test_same_seed_gives_byte_identical_files_in_any_order(
    corpus: tuple[Path, float], tmp_path: Path
) -> None:
    out, _ = corpus
    for spec in SETS.values():
        picked = [spec.n_streams - 1, 7, 0]  # out of order: a stream owes nothing to the others
        generate.write_set(spec, tmp_path, picked)
        again = labels(tmp_path, spec.name, "windows")
        before = labels(out, spec.name, "windows")
        for key in again:
            assert (tmp_path / "data" / key).read_bytes() == (out / "data" / key).read_bytes()
            assert again[key] == before[key]
        assert len(again) == 3


def test_every_label_lies_inside_its_stream_in_order_and_spaced(
    corpus: tuple[Path, float], streams: dict[str, Series]
) -> None:
    out, _ = corpus
    for name in SETS:
        for key, wins in labels(out, name, "windows").items():
            series = streams[key]
            first, last = int(series.ms[0]), int(series.ms[-1])
            previous_end = None
            for start, end, kind in wins:
                assert kind in KINDS
                assert STAMP.match(start) and STAMP.match(end)
                assert first + WARM_S * 1000 <= ms(start) < ms(end) <= last, (key, start)
                if previous_end is not None:
                    assert ms(start) - previous_end >= SPACING_S * 1000, (key, start)
                previous_end = ms(end)


def test_each_set_has_every_kind_often_enough_and_a_fifth_clean(
    corpus: tuple[Path, float],
) -> None:
    out, _ = corpus
    for name, spec in SETS.items():
        wins = labels(out, name, "windows")
        kinds = [w[2] for ws in wins.values() for w in ws]
        assert min(kinds.count(k) for k in KINDS) >= MIN_PER_KIND[name]
        clean = sum(1 for ws in wins.values() if not ws)
        assert len(wins) == spec.n_streams
        assert 0.15 <= clean / spec.n_streams <= 0.25


def test_some_anomalies_start_within_a_new_devices_first_quarter_hour(
    corpus: tuple[Path, float], streams: dict[str, Series]
) -> None:
    out, _ = corpus
    for name in SETS:
        metas = labels(out, name, "meta")
        # The onset is in the early span; the first reading showing it may come a period later.
        latest = {key: _timing(m).early[1] + _timing(m).period_s for key, m in metas.items()}
        early = [
            key
            for key, ws in labels(out, name, "windows").items()
            if ws and ms(ws[0][0]) - streams[key].ms[0] <= 1000 * latest[key]
        ]
        assert len(early) >= 5


def _timing(meta: dict[str, Any]) -> Timing:
    """The window convention's times (900 s early, 60 s grace at 1 Hz) for a stream's period."""
    return Timing(meta["sampling"]["period_s"])


def test_values_are_quantised_finite_and_printed_to_the_sensor_resolution(
    corpus: tuple[Path, float], streams: dict[str, Series]
) -> None:
    out, _ = corpus
    for name in SETS:
        for key, meta in labels(out, name, "meta").items():
            series = streams[key]
            quantum = meta["sensor"]["quantum_c"]
            steps = series.values / quantum
            assert np.isfinite(series.values).all()
            assert np.allclose(steps, np.round(steps), atol=1e-6), key
            digits = sensor.decimals(quantum)
            assert re.search(rf",-?\d+\.\d{{{digits}}}\n", series.text)
            assert ",-0." + "0" * digits + "\n" not in series.text


def test_timestamps_strictly_increase_with_jitter_and_gaps(
    corpus: tuple[Path, float], streams: dict[str, Series]
) -> None:
    out, _ = corpus
    periods = {
        key: meta["sampling"]["period_s"]
        for name in SETS
        for key, meta in labels(out, name, "meta").items()
    }
    gappy = 0
    for key, series in streams.items():
        steps = np.diff(series.ms)
        assert (steps > 0).all(), key
        gappy += bool((steps > max(10_000, 5_000 * periods[key])).any())
        if key.startswith(("tuning/", "tuning2/")):
            assert len(np.unique(steps[:200])) > 1  # jittered, not a perfect clock
    assert gappy >= 30


def test_meta_describes_each_stream(corpus: tuple[Path, float], streams: dict[str, Series]) -> None:
    out, _ = corpus
    for name in SETS:
        wins = labels(out, name, "windows")
        for key, meta in labels(out, name, "meta").items():
            series = streams[key]
            span = (series.ms[-1] - series.ms[0]) / 1000
            labelled = sum(ms(b) - ms(a) for a, b, _ in wins[key]) / 1000
            assert meta["n_readings"] == len(series.ms)
            assert meta["duration_s"] == pytest.approx(span, abs=0.01)
            assert meta["normal_seconds"] == pytest.approx(span - labelled, abs=0.01)
            assert meta["sigma_c"] > 0
            assert meta["seed"] == [SETS[name].seed, int(key.rsplit("_", 1)[1][:3])]


def test_sizes_match_the_readme() -> None:
    for spec, lo, hi in (
        (TUNING, 20 * 60, 24 * 3600),
        (TUNING2, 3600, 30 * 86_400),
        (HOLDOUT, 20 * 60, 72 * 3600),
    ):
        durations = [p.duration_s for p in plan_set(spec)]
        assert sum(durations) / 3600 == pytest.approx(spec.device_hours, rel=0.01)
        assert min(durations) == lo and max(durations) == hi


def test_tuning2_lengths_follow_the_sampling_and_fit_ci(corpus: tuple[Path, float]) -> None:
    """Each slow device holds about 1,000 readings or more, except two recently started per
    class (offline gaps may take a 5-day LoRaWAN device a little under).
    """
    out, _ = corpus
    metas = labels(out, "tuning2", "meta")
    recent = 0
    for plan in plan_set(TUNING2):
        lo, hi = plan.sampling.lengths_s or (0.0, 0.0)
        assert lo / 6 <= plan.duration_s <= hi
        readings = metas[f"tuning2/{plan.name}.csv"]["n_readings"]
        recent += plan.duration_s < lo
        assert readings >= (200 if plan.duration_s < lo else 900), plan.name
    assert recent == len(TUNING2.recent) * len(TUNING2.samplings)
    assert 150_000 <= sum(meta["n_readings"] for meta in metas.values()) <= 400_000


def test_no_two_sets_share_a_climate_noise_sampling_or_resolution() -> None:
    for one, other in ((TUNING, HOLDOUT), (TUNING2, HOLDOUT), (TUNING, TUNING2)):
        assert not set(one.climates) & set(other.climates)
        assert not set(one.noise_models) & set(other.noise_models)
        assert not {s.name for s in one.samplings} & {s.name for s in other.samplings}
        assert not set(one.quanta) & set(other.quanta)
    # The slow devices share no sampling period either (tuning and holdout share 1 s).
    slow = {s.period_s for s in TUNING2.samplings}
    assert not slow & {s.period_s for spec in (TUNING, HOLDOUT) for s in spec.samplings}
    for spec in SETS.values():
        plans = plan_set(spec)
        assert {p.climate for p in plans} == set(spec.climates)
        assert {p.noise_model for p in plans} == set(spec.noise_models)
        assert {p.sampling for p in plans} == set(spec.samplings)
        assert {p.quantum for p in plans} == set(spec.quanta)


def test_anomalies_show_in_the_readings_and_normal_weather_stays_plausible(
    corpus: tuple[Path, float], streams: dict[str, Series]
) -> None:
    out, _ = corpus
    for name in SETS:
        metas = labels(out, name, "meta")
        for key, wins in labels(out, name, "windows").items():
            series = streams[key]
            lo, hi = metas[key]["plausible_c"]
            inside = np.zeros(len(series.ms), dtype=bool)
            grace = _timing(metas[key]).grace
            for start, end, kind in wins:
                span = (series.ms >= ms(start)) & (series.ms <= ms(end))
                inside |= span
                _assert_visible(kind, series, ms(start), ms(end) - grace * 1000, (lo, hi), key)
            outside = series.values[~inside]
            assert ((outside > lo) & (outside < hi)).all(), key


def _assert_visible(
    kind: str, series: Series, start: int, true_end: float, plausible: tuple[float, float],
    key: str,
) -> None:
    """The cheap tell of each kind: an error code, a frozen value, a jump from the last reading."""
    span = series.values[(series.ms >= start) & (series.ms <= true_end)]
    before = series.values[np.searchsorted(series.ms, start) - 1]
    if kind == "range":
        assert ((span < plausible[0] - 20) | (span > plausible[1] + 20)).all(), key
    elif kind == "stuck":
        assert (span == before).all() and len(span) > 1, key
    elif kind == "spike":
        assert span.max() - before >= 1.0, key
    elif kind == "dip":
        assert before - span.min() >= 1.0, key


def test_level_faults_span_minutes_to_hours_in_each_set(corpus: tuple[Path, float]) -> None:
    out, _ = corpus
    for name in SETS:
        minutes: dict[str, list[float]] = {kind: [] for kind in KINDS}
        for wins in labels(out, name, "windows").values():
            for start, end, kind in wins:
                minutes[kind].append((ms(end) - ms(start)) / 60_000)
        assert min(minutes["shift"]) < 15 and max(minutes["shift"]) > 180
        assert min(minutes["drift"]) < 20 and max(minutes["drift"]) > 150
        assert min(minutes["stuck"]) < 10 and max(minutes["stuck"]) > 60
        assert min(minutes["noise"]) < 5 and max(minutes["noise"]) > 15


def test_on_slow_devices_level_faults_span_readings_and_spikes_stay_short(
    corpus: tuple[Path, float], streams: dict[str, Series]
) -> None:
    """A shift, drift, stuck spell or noise burst holds at least 8 readings; a spike 1 to 3."""
    out, _ = corpus
    metas = labels(out, "tuning2", "meta")
    for key, wins in labels(out, "tuning2", "windows").items():
        series = streams[key]
        grace = _timing(metas[key]).grace
        for start, end, kind in wins:
            true_end = ms(end) - grace * 1000 if ms(end) < series.ms[-1] else ms(end)
            held = int(((series.ms >= ms(start)) & (series.ms <= true_end)).sum())
            if kind in ("shift", "drift", "stuck", "noise"):
                assert held >= MIN_READINGS, (key, start, kind)
            elif kind == "spike":
                assert 1 <= held <= 3, (key, start)
