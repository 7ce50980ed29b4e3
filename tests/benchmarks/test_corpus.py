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
from benchmarks.corpus import generate
from benchmarks.corpus.faults import GRACE_S, SPACING_S, WARM_S
from benchmarks.corpus.sets import HOLDOUT, KINDS, SETS, TUNING, plan_set

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")
MIN_PER_KIND = {"tuning": 15, "holdout": 25}


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
    for spec in (TUNING, HOLDOUT):
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
        early = [
            key
            for key, ws in labels(out, name, "windows").items()
            if ws and ms(ws[0][0]) - streams[key].ms[0] <= 900_000
        ]
        assert len(early) >= 5


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
            digits = {0.1: 1, 0.0625: 4, 0.01: 2}[quantum]
            assert re.search(rf",-?\d+\.\d{{{digits}}}\n", series.text)
            assert ",-0." + "0" * digits + "\n" not in series.text


def test_timestamps_strictly_increase_with_jitter_and_gaps(streams: dict[str, Series]) -> None:
    gappy = 0
    for key, series in streams.items():
        steps = np.diff(series.ms)
        assert (steps > 0).all(), key
        gappy += bool((steps > 10_000).any())
        if key.startswith("tuning/"):
            assert len(np.unique(steps[:200])) > 1  # jittered, not a perfect clock
    assert gappy >= 20


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
    for spec, lo, hi in ((TUNING, 20 * 60, 24 * 3600), (HOLDOUT, 20 * 60, 72 * 3600)):
        durations = [p.duration_s for p in plan_set(spec)]
        assert sum(durations) / 3600 == pytest.approx(spec.device_hours, rel=0.01)
        assert min(durations) == lo and max(durations) == hi


def test_holdout_shares_no_climate_noise_sampling_or_resolution_with_tuning() -> None:
    assert not set(TUNING.climates) & set(HOLDOUT.climates)
    assert not set(TUNING.noise_models) & set(HOLDOUT.noise_models)
    assert not {s.name for s in TUNING.samplings} & {s.name for s in HOLDOUT.samplings}
    assert not set(TUNING.quanta) & set(HOLDOUT.quanta)
    assert {p.climate for p in plan_set(HOLDOUT)} == set(HOLDOUT.climates)


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
            for start, end, kind in wins:
                span = (series.ms >= ms(start)) & (series.ms <= ms(end))
                inside |= span
                _assert_visible(kind, series, ms(start), ms(end), (lo, hi), key)
            outside = series.values[~inside]
            assert ((outside > lo) & (outside < hi)).all(), key


def _assert_visible(
    kind: str, series: Series, start: int, end: int, plausible: tuple[float, float], key: str
) -> None:
    """The cheap tell of each kind: an error code, a frozen value, a jump from the last reading."""
    true_end = end - int(GRACE_S * 1000)
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
