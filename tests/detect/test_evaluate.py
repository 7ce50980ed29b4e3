"""evaluate_corpus over a few real NAB files: scores, reports, and one output row per input row."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from weatherpipe.detect.evaluate import evaluate_corpus, format_report

NAB = Path(__file__).resolve().parents[2] / "benchmarks" / "nab"  # carried in the repository
FILES = [
    "realTraffic/speed_7578.csv",
    "realAWSCloudwatch/iio_us-east-1_i-a2eb1cd9_NetworkIn.csv",
    "artificialNoAnomaly/art_daily_no_noise.csv",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("nab")
    data = root / "data"
    for name in FILES:
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(NAB / "data" / name, data / name)
    labels = json.loads((NAB / "labels" / "combined_windows.json").read_text())
    windows = root / "windows.json"
    windows.write_text(json.dumps({name: labels[name] for name in FILES}))
    return data, windows


def test_evaluate_writes_one_scored_row_per_input_row(
    corpus: tuple[Path, Path], tmp_path: Path
) -> None:
    data, windows = corpus
    report = evaluate_corpus(data, windows, "default", tmp_path / "out")
    assert [r.path for r in report.files] == sorted(FILES)
    for name in FILES:
        with (data / name).open() as source, (tmp_path / "out" / name).open() as result:
            rows_in = list(csv.reader(source))
            rows_out = list(csv.reader(result))
        assert rows_out[0] == ["timestamp", "value", "score", "is_anomaly", "kind", "severity"]
        assert [r[:2] for r in rows_out[1:]] == rows_in[1:]
        assert all(0.0 <= float(r[2]) <= 1.0 and r[3] in {"0", "1"} for r in rows_out[1:])
        assert all((r[3] == "1") == (r[4] != "") for r in rows_out[1:])


def test_evaluate_scores_and_reports_every_profile(corpus: tuple[Path, Path]) -> None:
    data, windows = corpus
    report = evaluate_corpus(data, windows, "kmeans-minute", None)
    # kmeans-minute never fires on 5-minute data: exactly the null detector, 0 on every profile.
    assert report.normalised == {
        "standard": 0.0,
        "reward_low_FP_rate": 0.0,
        "reward_low_FN_rate": 0.0,
    }
    assert report.events.counts.true_positives == 0
    assert report.events.counts.false_negatives == 6  # 4 windows in speed_7578, 2 in NetworkIn
    text = format_report(report, per_file=True, nab=True)
    assert "standard" in text and "low FP" in text and "F1" in text
    assert all(name in text for name in FILES)


def _write_stream(root: Path, name: str, values: list[float], start: int = 1_767_225_600) -> None:
    path = root / "data" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["timestamp,value"]
    for k, v in enumerate(values):
        stamp = datetime.fromtimestamp(start + k, UTC).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{stamp},{v}")
    path.write_text("\n".join(lines) + "\n")


def test_evaluate_refuses_an_empty_folder_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    windows = tmp_path / "windows.json"
    windows.write_text("{}")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "weatherpipe",
            "evaluate",
            str(tmp_path / "data"),
            "--windows",
            str(windows),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "no CSV files" in result.stderr


def test_evaluate_reports_recall_per_kind_and_false_alarms_per_normal_day(tmp_path: Path) -> None:
    # One hour at 1 Hz: a quiet sensor with a 6 C spike at 30 minutes and a frozen stretch later.
    rng = np.random.default_rng(3)
    values = [round(20.0 + float(rng.normal(0, 0.05)), 1) for _ in range(3_600)]
    values[1_800] += 6.0
    values[2_400:2_700] = [values[2_399]] * 300
    _write_stream(tmp_path, "set/a.csv", values)
    stamp = lambda k: datetime.fromtimestamp(1_767_225_600 + k, UTC).isoformat(" ")  # noqa: E731
    labels = {
        "set/a.csv": [
            [stamp(1_800), stamp(1_860), "spike"],
            [stamp(2_400), stamp(2_760), "stuck"],
            [stamp(3_000), stamp(3_060), "shift"],  # nothing happens there: a miss
        ]
    }
    windows = tmp_path / "windows.json"
    windows.write_text(json.dumps(labels))
    report = evaluate_corpus(tmp_path / "data", windows, "default")
    e = report.events
    assert e.total == {"spike": 1, "stuck": 1, "shift": 1}
    assert e.caught == {"spike": 1, "stuck": 1, "shift": 0}
    assert e.normal_seconds == pytest.approx(3_599 - 60 - 360 - 60)
    text = format_report(report)
    assert "spike      recall 1.000   (1 of 1)" in text
    assert "shift      recall 0.000   (0 of 1)" in text
    assert "false alarms per device-day" in text


def test_evaluate_tells_each_file_done_for_a_progress_bar(corpus: tuple[Path, Path]) -> None:
    data, windows = corpus
    heard: list[tuple[int, int]] = []
    evaluate_corpus(data, windows, "kmeans-minute", None, on_file=lambda *n: heard.append(n))
    assert heard == [(0, 3), (1, 3), (2, 3), (3, 3)]
